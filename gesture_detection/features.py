"""Hand features that describe the gesture, not the hand or the camera, and finger counting from them.

MediaPipe gives each hand 21 landmarks in the photo's pixels (x, y, and a depth z on x's scale) and
21 world landmarks (metres, about the hand's centre: the model's estimate of the hand's 3-D shape).
Landmark order: 0 wrist; thumb 1-4; index 5-8; middle 9-12; ring 13-16; pinky 17-20.

`hand_features` joins three blocks:

- **palm frame** (36): the 18 landmarks other than the wrist, index MCP and pinky MCP in the affine
  frame of those three (wrist at 0, index MCP at (1, 0), pinky MCP at (0, 1)), from the pixel x, y.
  Any 2-D affine map of the photo (shift, scale, in-plane rotation, a non-square resize, a mirror)
  moves the frame with the points, so these numbers do not change at all; and because the palm is
  nearly flat, turning the hand out of the image plane changes its palm points little either.
- **joints** (41): from the world landmarks (the pixel x, y, z where there are none): the bend at each
  finger joint, how straight each finger is, fingertip distances to the wrist, to each other and
  to the palm plane in palm sizes, the spread between fingers, and how squarely the palm faces the
  camera. Lengths over lengths and angles: free of position, scale and any 3-D rotation or mirror.
- **fingers** (6): `finger_extension` per finger, in (0, 1), and their sum, the geometric finger count.

With `oriented=True` an **orientation** block (6) is added: where the palm, the index finger and the
thumb point in the image (cos, sin each). It is what tells a thumb up from a thumb down or a hand
pointing left from one pointing right, so it is kept only for datasets that declare such classes,
and it is never mirrored at prediction (see `augment_hand` for the mirrored training copies).
"""
from __future__ import annotations

import numpy as np

WRIST, INDEX_MCP, MIDDLE_MCP, PINKY_MCP = 0, 5, 9, 17
FINGER_NAMES = ("thumb", "index", "middle", "ring", "pinky")
# each finger's chain from the wrist to its tip
FINGER_CHAINS = ((0, 1, 2, 3, 4), (0, 5, 6, 7, 8), (0, 9, 10, 11, 12), (0, 13, 14, 15, 16), (0, 17, 18, 19, 20))
TIPS = (4, 8, 12, 16, 20)
PALM_FRAME_POINTS = tuple(i for i in range(21) if i not in (WRIST, INDEX_MCP, PINKY_MCP))
# a palm-frame coordinate this far out only happens for a palm seen edge-on (a near-singular frame)
PALM_FRAME_LIMIT = 4.0

# Finger counting: a finger is extended when its joints are nearly straight. Per finger, the bend
# (degrees, summed over its two outer joints: PIP + DIP, the thumb's MCP + IP) at which it is half
# extended and the width of the transition; the thumb must also be away from the palm (tip to index
# MCP, in palm sizes). In MediaPipe's world landmarks an extended finger bends 20-50 degrees, a
# folded one 110-170; the values were picked on a small grid by the finger count on the train splits
# of both real sets (README), never on a test image.
HALF_EXTENDED_BEND = {"thumb": 35.0, "index": 70.0, "middle": 70.0, "ring": 70.0, "pinky": 70.0}
BEND_WIDTH = {"thumb": 6.0, "index": 8.0, "middle": 8.0, "ring": 8.0, "pinky": 8.0}
THUMB_HALF_AWAY, THUMB_AWAY_WIDTH = 0.4, 0.08

N_PALM_FRAME, N_JOINTS, N_FINGERS, N_ORIENTATION = 2 * len(PALM_FRAME_POINTS), 41, 6, 6


def n_features(oriented: bool = False) -> int:
    return N_PALM_FRAME + N_JOINTS + N_FINGERS + (N_ORIENTATION if oriented else 0)


def _as_points(points, name: str) -> np.ndarray:
    """(N, 21, 3) float64 from one hand's (21, 3) or a batch's (N, 21, 3) landmarks."""
    points = np.asarray(points, dtype=np.float64)
    if points.shape[-2:] != (21, 3) or points.ndim not in (2, 3):
        raise ValueError(f"{name}: expected 21 landmarks of (x, y, z) per hand, got shape {points.shape}")
    return points.reshape(-1, 21, 3)


def palm_frame_coordinates(pixels: np.ndarray) -> np.ndarray:
    """(N, 18, 2): the other landmarks' x, y in the affine frame of wrist, index MCP and pinky MCP."""
    pixels = _as_points(pixels, "pixel landmarks")
    wrist = pixels[:, WRIST, :2]
    basis = np.stack([pixels[:, INDEX_MCP, :2] - wrist, pixels[:, PINKY_MCP, :2] - wrist], axis=2)  # (N, 2, 2)
    offsets = pixels[:, list(PALM_FRAME_POINTS), :2] - wrist[:, None]
    scale = np.linalg.norm(basis, axis=1).prod(axis=1)
    # a palm exactly edge-on has no frame: those hands get zeros (the identity keeps solve defined)
    singular = np.abs(np.linalg.det(basis)) <= 1e-6 * np.maximum(scale, 1e-12)
    basis[singular] = np.eye(2)
    coordinates = np.linalg.solve(basis[:, None], offsets[..., None])[..., 0]
    coordinates[singular] = 0.0
    return np.clip(coordinates, -PALM_FRAME_LIMIT, PALM_FRAME_LIMIT)


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between the vectors along the last axis of a and b."""
    cosine = (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def _bones(shape: np.ndarray) -> np.ndarray:
    """(N, 5, 4, 3): each finger's four bones from the wrist outwards."""
    return np.diff(shape[:, np.array(FINGER_CHAINS)], axis=2)


def joint_bends(shape: np.ndarray) -> np.ndarray:
    """(N, 5, 3) bends in degrees (0 = straight) at the three joints of each finger, base to tip."""
    bones = _bones(_as_points(shape, "landmarks"))
    return _angle(bones[:, :, :-1], bones[:, :, 1:])


def palm_size(shape: np.ndarray) -> np.ndarray:
    """(N,): mean distance from the wrist to the index, middle and pinky MCPs."""
    shape = _as_points(shape, "landmarks")
    size = np.linalg.norm(shape[:, [INDEX_MCP, MIDDLE_MCP, PINKY_MCP]] - shape[:, [WRIST]], axis=2).mean(axis=1)
    if (size <= 0).any():
        raise ValueError("degenerate landmarks: a palm has no size")
    return size


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def finger_extension(shape: np.ndarray) -> np.ndarray:
    """(N, 5), thumb to pinky, in (0, 1): how surely each finger is extended, from the bends of its
    outer two joints (and for the thumb also how far its tip is from the palm)."""
    shape = _as_points(shape, "landmarks")
    outer_bend = joint_bends(shape)[:, :, 1:].sum(axis=2)
    half = np.array([HALF_EXTENDED_BEND[name] for name in FINGER_NAMES])
    width = np.array([BEND_WIDTH[name] for name in FINGER_NAMES])
    extension = _sigmoid((half - outer_bend) / width)
    thumb_away = np.linalg.norm(shape[:, TIPS[0]] - shape[:, INDEX_MCP], axis=1) / palm_size(shape)
    extension[:, 0] *= _sigmoid((thumb_away - THUMB_HALF_AWAY) / THUMB_AWAY_WIDTH)
    return extension


# Finger states for counting (`model.FingerCounter`), read so that a palm and a back view give the same
# numbers (3-D distances in the world landmarks, no sign of the palm's normal):
# - a long finger is extended when its tip is farther from the wrist than its PIP joint is, by the
#   ratio |tip - wrist| / |PIP - wrist| (about 0.6-0.9 folded, 1.3-1.5 extended; a finger curled into an
#   OK circle stays near 1, so it is not counted);
# - the thumb is extended when its tip is far from the pinky's knuckle, |thumb tip - pinky MCP| in palm
#   sizes (0.4-0.9 folded over or beside the palm, 1.0-1.4 held out). The joint bends of the earlier
#   rule (`finger_extension`) read a thumb laid along the index side as folded, and an OK circle's
#   index as extended.
FINGER_STATE_TIP, FINGER_STATE_PIP = (8, 12, 16, 20), (6, 10, 14, 18)


def finger_state_scores(shape: np.ndarray) -> np.ndarray:
    """(N, 5), thumb to pinky: the thumb tip's distance to the pinky MCP in palm sizes, and each long
    finger's tip-to-wrist over PIP-to-wrist distance; larger means more extended (see above)."""
    shape = _as_points(shape, "landmarks")
    wrist = shape[:, [WRIST]]
    ratio = np.linalg.norm(shape[:, list(FINGER_STATE_TIP)] - wrist, axis=2) \
        / np.maximum(np.linalg.norm(shape[:, list(FINGER_STATE_PIP)] - wrist, axis=2), 1e-12)
    thumb = np.linalg.norm(shape[:, TIPS[0]] - shape[:, PINKY_MCP], axis=1) / palm_size(shape)
    return np.concatenate([thumb[:, None], ratio], axis=1)


def count_distribution(extension: np.ndarray) -> np.ndarray:
    """(N, 6): P(0..5 fingers extended) when each finger is extended independently with its probability."""
    extension = np.asarray(extension, dtype=np.float64).reshape(-1, 5)
    distribution = np.zeros((len(extension), 6))
    distribution[:, 0] = 1.0
    for finger in range(5):
        p = extension[:, finger:finger + 1]
        distribution = distribution * (1 - p) + np.pad(distribution[:, :-1], ((0, 0), (1, 0))) * p
    return distribution


def joint_features(shape: np.ndarray) -> np.ndarray:
    """(N, 41): bends, straightness, fingertip distances, spread and palm facing (module docstring)."""
    shape = _as_points(shape, "landmarks")
    size = palm_size(shape)[:, None]
    bones = _bones(shape)
    bends = _angle(bones[:, :, :-1], bones[:, :, 1:]).reshape(len(shape), -1) / 180.0
    outer = bones[:, :, 1:]  # MCP to tip
    straightness = np.linalg.norm(outer.sum(axis=2), axis=2) / np.maximum(np.linalg.norm(outer, axis=3).sum(axis=2), 1e-12)
    tips = shape[:, list(TIPS)]
    wrist = shape[:, [WRIST]]
    tip_to_wrist = np.linalg.norm(tips - wrist, axis=2) / size
    neighbouring_tips = np.linalg.norm(np.diff(tips, axis=1), axis=2) / size
    thumb_to_palm = np.linalg.norm(tips[:, [0]] - shape[:, [INDEX_MCP, PINKY_MCP]], axis=2) / size
    spread = _angle(outer[:, :-1, 0], outer[:, 1:, 0]) / 180.0
    normal = np.cross(shape[:, INDEX_MCP] - shape[:, WRIST], shape[:, PINKY_MCP] - shape[:, WRIST])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    # the normal's sign flips with a mirror, so only magnitudes enter
    tip_off_palm = np.abs(((tips - wrist) * normal[:, None]).sum(axis=2)) / size
    facing = np.abs(normal[:, 2:])
    return np.concatenate([bends, straightness, tip_to_wrist, neighbouring_tips, thumb_to_palm, spread,
                           tip_off_palm, facing], axis=1)


def orientation_features(pixels: np.ndarray) -> np.ndarray:
    """(N, 6): cos, sin of the image directions of the palm (wrist to middle MCP), the index finger and
    the thumb (MCP to tip)."""
    pixels = _as_points(pixels, "pixel landmarks")[..., :2]
    directions = np.stack([pixels[:, MIDDLE_MCP] - pixels[:, WRIST], pixels[:, 8] - pixels[:, INDEX_MCP],
                           pixels[:, 4] - pixels[:, 2]], axis=1)
    directions /= np.maximum(np.linalg.norm(directions, axis=2, keepdims=True), 1e-12)
    return directions.reshape(len(pixels), -1)


def hand_features(pixels, world=None, oriented: bool = False) -> np.ndarray:
    """The feature vectors (N, n_features) of hands (see the module docstring): `pixels` (N, 21, 3)
    MediaPipe landmarks in pixels, `world` (N, 21, 3) their world landmarks or None (then the pixel
    x, y, z stand in for them). One hand's (21, 3) arrays give a (1, n_features) array."""
    pixels = _as_points(pixels, "pixel landmarks")
    shape = _as_points(world, "world landmarks") if world is not None else pixels
    if len(shape) != len(pixels):
        raise ValueError(f"{len(pixels)} hands of pixel landmarks but {len(shape)} of world landmarks")
    extension = finger_extension(shape)
    blocks = [palm_frame_coordinates(pixels).reshape(len(pixels), -1), joint_features(shape), extension,
              extension.sum(axis=1, keepdims=True)]
    if oriented:
        blocks.append(orientation_features(pixels))
    return np.concatenate(blocks, axis=1).astype(np.float32)


def _rotations(x_degrees: np.ndarray, y_degrees: np.ndarray, z_degrees: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotations about the image's x, then y, then the view axis z."""
    ax, ay, az = np.radians(x_degrees), np.radians(y_degrees), np.radians(z_degrees)
    one, zero = np.ones_like(ax), np.zeros_like(ax)
    rx = np.stack([one, zero, zero, zero, np.cos(ax), -np.sin(ax), zero, np.sin(ax), np.cos(ax)], 1).reshape(-1, 3, 3)
    ry = np.stack([np.cos(ay), zero, np.sin(ay), zero, one, zero, -np.sin(ay), zero, np.cos(ay)], 1).reshape(-1, 3, 3)
    rz = np.stack([np.cos(az), -np.sin(az), zero, np.sin(az), np.cos(az), zero, zero, zero, one], 1).reshape(-1, 3, 3)
    return rz @ ry @ rx


# How hard `augment_hands` changes the training hands. `strong` is the default: of the two, it gave the
# higher by-session cross-validated accuracy on the HandsDataset train split, both trained on four fifths
# of the sessions and on one fifth (bench: selection.session_cv); `mild` is the earlier setting.
AUGMENTATIONS = {"mild": dict(out_of_plane=25.0, in_plane=15.0, stretch=0.25, noise=0.03),
                 "strong": dict(out_of_plane=40.0, in_plane=25.0, stretch=0.35, noise=0.05)}


def augment_hands(pixels: np.ndarray, world: np.ndarray, rng: np.random.Generator, mirror: np.ndarray,
                  out_of_plane: float = 25.0, in_plane: float = 15.0, stretch: float = 0.25,
                  noise: float = 0.03) -> tuple[np.ndarray, np.ndarray]:
    """Randomly changed copies of hands' pixel and world landmarks (N, 21, 3), as other photos of them
    might give: turned in 3-D (up to `out_of_plane` degrees about the image axes, `in_plane` about the
    view axis), the photo stretched non-uniformly (x and y each by a factor up to e^±`stretch`), every
    point moved by Gaussian noise of `noise` palm sizes, and where `mirror` (N,) is true flipped left
    to right (a left hand's copy of a right hand: only for classes whose meaning survives a mirror)."""
    pixels, world = _as_points(pixels, "pixel landmarks"), _as_points(world, "world landmarks")
    n = len(pixels)
    flips = np.where(np.asarray(mirror, dtype=bool)[:, None], [-1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    turns = _rotations(*rng.uniform(-out_of_plane, out_of_plane, (2, n)), rng.uniform(-in_plane, in_plane, n))
    transform = flips[:, :, None] * turns  # mirror after turning
    centre = pixels[:, [WRIST]]
    moved = (pixels - centre) @ transform.transpose(0, 2, 1)
    moved[..., :2] *= np.exp(rng.uniform(-stretch, stretch, (n, 1, 2)))
    moved += rng.normal(size=moved.shape) * (noise * palm_size(pixels))[:, None, None] + centre
    moved_world = world @ transform.transpose(0, 2, 1) + rng.normal(size=world.shape) * (noise * palm_size(world))[:, None, None]
    return moved, moved_world


# Idle hands for training (`model.LandmarkClassifier`'s `no_gesture` class): a relaxed hand hanging at the
# side or resting, a hand holding something, has its fingers neither straight nor folded. Each generated
# one is a training hand among the most open ones with each finger moved part of the way (a share drawn
# per finger in `curl`) towards the same finger of a hand among the most closed, after that hand's palm
# was laid onto the open one's (world landmarks: rotation, scale and, for a hand of the other side, a
# mirror; pixel landmarks: a 2-D affine map). The palm points stay the open hand's.
IDLE_CURL = (0.25, 0.5)
PALM_POINTS = (WRIST, 1, INDEX_MCP, MIDDLE_MCP, 13, PINKY_MCP)


def _align_3d(moving: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """`moving` (21, 3) mapped onto `fixed` by the orthogonal map (a mirror allowed), scale and shift that
    best lay its palm points on fixed's."""
    a, b = moving[list(PALM_POINTS)], fixed[list(PALM_POINTS)]
    ca, cb = a.mean(axis=0), b.mean(axis=0)
    u, singular, vt = np.linalg.svd((a - ca).T @ (b - cb))
    rotation = u @ vt
    scale = singular.sum() / max(float(((a - ca) ** 2).sum()), 1e-12)
    return (moving - ca) @ rotation * scale + cb


def _align_2d(moving: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """`moving` (21, 3) pixel landmarks mapped onto `fixed` by the 2-D affine map that best lays its palm
    points on fixed's (z scaled by the map's mean scale)."""
    a, b = moving[list(PALM_POINTS), :2], fixed[list(PALM_POINTS), :2]
    design = np.c_[a, np.ones(len(a))]
    affine, *_ = np.linalg.lstsq(design, b, rcond=None)
    out = moving.copy()
    out[:, :2] = np.c_[moving[:, :2], np.ones(21)] @ affine
    out[:, 2] = moving[:, 2] * np.sqrt(abs(np.linalg.det(affine[:2])))
    return out


def idle_hands(pixels: np.ndarray, world: np.ndarray, n: int, rng: np.random.Generator,
               curl: tuple[float, float] = IDLE_CURL, pool: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """`n` generated idle hands (pixel and world landmarks, (n, 21, 3)) from training hands (module note
    above): an open hand among the `pool` share with the most extended fingers, each finger taken
    a share drawn from `curl` of the way to the same finger of a closed hand among the `pool` share with
    the fewest."""
    pixels, world = _as_points(pixels, "pixel landmarks"), _as_points(world, "world landmarks")
    openness = finger_state_scores(world)[:, 1:].sum(axis=1)
    order = np.argsort(openness)
    k = max(int(len(order) * pool), 1)
    closed, opened = order[:k], order[-k:]
    out_pixels, out_world = np.empty((n, 21, 3)), np.empty((n, 21, 3))
    for i in range(n):
        o, c = rng.choice(opened), rng.choice(closed)
        target_world, target_pixels = _align_3d(world[c], world[o]), _align_2d(pixels[c], pixels[o])
        out_world[i], out_pixels[i] = world[o], pixels[o]
        for chain in FINGER_CHAINS:
            share = rng.uniform(*curl)
            joints = list(chain[2:])  # past the knuckle (the thumb: past its base); the palm stays
            out_world[i, joints] = (1 - share) * world[o, joints] + share * target_world[joints]
            out_pixels[i, joints] = (1 - share) * pixels[o, joints] + share * target_pixels[joints]
    return out_pixels, out_world
