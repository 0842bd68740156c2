"""Video -> MediaPipe Pose landmarks -> gap filling and smoothing -> skeleton tree, angles, BVH.

Modules, in the order data flows through them:
  data      LandmarkSequence (33 landmarks, visibility, image and world coordinates, timestamps) and its JSON format
  gaps      low-visibility masking, interpolation across short gaps, the original neighbour mean
  filters   One Euro (MediaPipe's parameters), Savitzky-Golay, constant-velocity Kalman; batch and streaming
  skeleton  the 35-vertex tree rooted at the spine base, spherical angles, quaternions, forward kinematics
  bvh       BVH writer (ZXY channels continuous over time, Y- or Z-up) and a small parser to check what was written
  blender_roundtrip  the BVH through Blender's own importer (bpy, in its own environment) and back
  extract   CLI: video or image folder -> landmarks, smoothed landmarks, angles.csv, skeleton.bvh
  render    CLI: side-by-side raw/smoothed video, 3-D animation, trajectory plot
"""
