"""A BVH through Blender's own importer and back: what Blender makes of the file, frame by frame.

Blender's Python module (`bpy`, the PyPI wheel of Blender) is large (about 360 MB) and pins its own numpy,
so it lives in a separate environment (`make test-blender` creates it in .cache/blender from the
`blender` dependency group of pyproject.toml). This file is two things:

* run by that environment's Python, a script: import the BVH with `bpy.ops.import_anim.bvh` (the
  importer of File > Import > Motion Capture (.bvh)), step through the frames with `scene.frame_set`,
  and save every pose bone's head, and the tail of every bone that ends in an End Site, in Blender's
  world coordinates (`obj.matrix_world @ pose_bone.head`), to an .npz; optionally render one frame;

      .cache/blender/bin/python pose_smoothing/blender_roundtrip.py skeleton.bvh -o positions.npz [--up y|z]
                                [--render armature.png --render-frame 100]

* imported by the project, the caller (`blender_positions`) and the measures (`roundtrip_errors`,
  `bone_length_cv`). Positions come back in the file's own frame and unit (centimetres), named as
  `bvh.bvh_world_positions` names them, so `bvh.vertex_positions` turns them into skeleton vertices.

The interpreter is `$POSE_BLENDER_PYTHON`, else `.cache/blender/bin/python` under the repository root.
The script half imports nothing from the project (the Blender environment has only bpy and numpy).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

BLENDER_PYTHON_VARIABLE = "POSE_BLENDER_PYTHON"
DEFAULT_BLENDER_ENV = Path(__file__).resolve().parents[1] / ".cache" / "blender"
IMPORT_SCALE = 0.01   # the file is in centimetres; Blender's unit is the metre
# Blender's importer turns the file with axis_forward / axis_up; a Z-up file is taken as it is
IMPORT_AXES = {"y": ("-Z", "Y"), "z": ("Y", "Z")}
BLENDER_FROM_FILE = {"y": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]), "z": np.eye(3)}


# ----------------------------------------------------------------------------------------- project side
def blender_python() -> Path:
    """The interpreter of the environment with bpy: $POSE_BLENDER_PYTHON, else .cache/blender/bin/python."""
    configured = os.environ.get(BLENDER_PYTHON_VARIABLE)
    return Path(configured) if configured else DEFAULT_BLENDER_ENV / "bin" / "python"


def blender_unavailable() -> str | None:
    """None when bpy can be run, else why not (for a test's skip reason or the bench's record)."""
    python = blender_python()
    if not python.is_file():
        return (f"no Blender environment at {python} (make test-blender creates it; or set "
                f"{BLENDER_PYTHON_VARIABLE} to a Python that has the bpy wheel)")
    probe = subprocess.run([str(python), "-c", "import bpy; print(bpy.app.version_string)"],
                           capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        return f"{python}: cannot import bpy ({(probe.stderr.strip().splitlines() or ['?'])[-1]})"
    return None


def blender_positions(bvh_path: str | os.PathLike, up: str = "y", render: str | os.PathLike | None = None,
                      render_frame: int = 0, timeout: float = 1800) -> tuple[dict[str, np.ndarray], dict]:
    """Import `bvh_path` (written with `up`) in Blender; returns (name -> (frames, 3) positions in the
    file's frame and unit, info: Blender's version, scene frame rate, frames, seconds)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "positions.npz"
        command = [str(blender_python()), str(Path(__file__).resolve()), str(bvh_path), "-o", str(out), "--up", up]
        if render is not None:
            command += ["--render", str(render), "--render-frame", str(render_frame)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{bvh_path}: Blender round trip failed (exit {done.returncode}): "
                               f"{done.stderr.strip()[-2000:]}")
        with np.load(out) as saved:
            names, world = [str(n) for n in saved["names"]], saved["positions"]   # (frames, names, 3) metres
            info = json.loads(str(saved["info"]))
    in_file = world @ BLENDER_FROM_FILE[up] / IMPORT_SCALE                    # inverse turn (orthogonal), cm
    return {name: in_file[:, i] for i, name in enumerate(names)}, info


def roundtrip_errors(expected: np.ndarray, got: np.ndarray) -> dict[str, float]:
    """Mean and largest distance between two (frames, vertices, 3) point sets, in their unit."""
    distance = np.linalg.norm(np.asarray(got) - np.asarray(expected), axis=-1)
    return {"mean": float(distance.mean()), "max": float(distance.max())}


def bone_length_cv(points: np.ndarray, bones: list[tuple[int, int]]) -> float:
    """The largest, over bones, coefficient of variation (std / mean over frames) of a bone's length."""
    lengths = np.linalg.norm(np.stack([points[:, c] - points[:, p] for p, c in bones], axis=1), axis=-1)
    mean = lengths.mean(axis=0)
    return float(np.max(lengths.std(axis=0) / np.where(mean > 0, mean, np.inf)))


# ----------------------------------------------------------------------------------------- Blender side
def _frames_in_file(path: Path) -> int:
    with open(path) as handle:
        for line in handle:
            if line.strip().startswith("Frames:"):
                return int(line.split()[1])
    raise ValueError(f"{path}: no 'Frames:' line")


def _render(bpy, armature, path: str, frame: int) -> None:
    """Render the pose at `frame` as tubes along the armature's bones (an armature itself is not renderable):
    Cycles on the CPU, orthographic camera in front of the person. A bone whose children all start at
    its head (a junction joint, zero length in the file) has no tube."""
    scene = bpy.context.scene
    scene.frame_set(frame)
    curve = bpy.data.curves.new("bones", "CURVE")
    curve.dimensions, curve.bevel_depth, curve.bevel_resolution = "3D", 0.015, 3
    world_points = []
    for bone in armature.pose.bones:
        children = bone.children
        if children and all((c.bone.head_local - bone.bone.head_local).length < 1e-6 for c in children):
            continue
        head, tail = armature.matrix_world @ bone.head, armature.matrix_world @ bone.tail
        spline = curve.splines.new("POLY")
        spline.points.add(1)
        spline.points[0].co, spline.points[1].co = (*head, 1.0), (*tail, 1.0)
        world_points += [head, tail]
    tubes = bpy.data.objects.new("bones", curve)
    scene.collection.objects.link(tubes)
    material = bpy.data.materials.new("bone")
    material.diffuse_color = (0.55, 0.12, 0.02, 1.0)
    material.use_nodes = True
    material.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (0.55, 0.12, 0.02, 1.0)
    curve.materials.append(material)
    low = np.min(np.array(world_points), axis=0)
    high = np.max(np.array(world_points), axis=0)
    centre, size = (low + high) / 2, float(max(high[0] - low[0], high[2] - low[2]))
    camera_data = bpy.data.cameras.new("camera")
    camera_data.type, camera_data.ortho_scale = "ORTHO", size * 1.25
    camera = bpy.data.objects.new("camera", camera_data)
    camera.location = (centre[0], centre[1] - 10.0, centre[2])
    camera.rotation_euler = (np.pi / 2, 0.0, 0.0)   # looking along +y, at the person's front
    scene.collection.objects.link(camera)
    scene.camera = camera
    light = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
    light.rotation_euler = (np.radians(60), 0.0, np.radians(-30))
    light.data.energy = 3.0
    scene.collection.objects.link(light)
    if scene.world is None:
        scene.world = bpy.data.worlds.new("world")
    scene.world.use_nodes = True
    scene.world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.6, 0.6, 0.6, 1.0)
    scene.render.engine = "CYCLES"
    scene.cycles.device, scene.cycles.samples, scene.cycles.use_denoising = "CPU", 16, False
    scene.render.resolution_x, scene.render.resolution_y = 480, 600
    scene.render.filepath = str(Path(path).resolve())
    bpy.ops.render.render(write_still=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run with the Python of an environment that has bpy: import a BVH "
                                                 "with Blender's importer and save the bones' world positions.")
    parser.add_argument("bvh", help="the BVH file")
    parser.add_argument("-o", "--output", required=True, help=".npz with names, positions (frames, names, 3) in "
                                                               "Blender's world frame (metres) and info")
    parser.add_argument("--up", choices=tuple(IMPORT_AXES), default="y", help="the file's up axis (default y)")
    parser.add_argument("--render", default=None, help="also render one frame of the imported pose to this PNG")
    parser.add_argument("--render-frame", type=int, default=0, help="the file's frame to render (from 0)")
    args = parser.parse_args(argv)
    import time

    import bpy

    started = time.perf_counter()
    bvh = Path(args.bvh).resolve()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    forward, up = IMPORT_AXES[args.up]
    result = bpy.ops.import_anim.bvh(filepath=str(bvh), global_scale=IMPORT_SCALE, axis_forward=forward, axis_up=up,
                                     rotate_mode="NATIVE", update_scene_fps=True, update_scene_duration=True,
                                     frame_start=1)
    if result != {"FINISHED"}:
        print(f"error: {bvh}: Blender's BVH importer returned {result}", file=sys.stderr)
        return 2
    armature = next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")
    scene, frames = bpy.context.scene, _frames_in_file(bvh)
    names = [b.name for b in armature.pose.bones] + [f"{b.name}/end" for b in armature.pose.bones if not b.children]
    ends = [b for b in armature.pose.bones if not b.children]
    positions = np.zeros((frames, len(names), 3))
    for frame in range(frames):
        scene.frame_set(1 + frame)
        world = armature.matrix_world
        positions[frame] = [tuple(world @ b.head) for b in armature.pose.bones] + [tuple(world @ b.tail) for b in ends]
    info = {"blender": bpy.app.version_string, "scene_fps": scene.render.fps / scene.render.fps_base,
            "frames": frames, "frame_range": [scene.frame_start, scene.frame_end],
            "seconds": time.perf_counter() - started}
    if args.render:
        _render(bpy, armature, args.render, 1 + args.render_frame)
    np.savez(args.output, names=np.array(names), positions=positions, info=json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
