"""`EmotionRecognizer`: weights in, frame in, emotion out (the class the competition's webcam prototype asks for).

    recognizer = EmotionRecognizer("weights/emotion/emotion.onnx")   # the released one (core.weights)
    result = recognizer.predict(frame)            # RGB uint8 frame (pass bgr=True for OpenCV frames)
    result.label, result.probabilities, result.valence, result.arousal, result.box, result.face_found

The network runs in onnxruntime when available (exported once from the Lightning checkpoint and cached
in .cache/emotion/onnx/), which is faster than eager PyTorch at batch 1; `backend="torch"` keeps
PyTorch. A `.onnx` file made by `export_onnx` can be passed as the weights directly.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.io import InputError
from core.models import ONNX, checked_model, onnx_model_session
from core.onnx import cached_onnx_session, check_backend
from core.onnx import export_onnx as core_export_onnx
from emotion.data import CLASSES, faces_to_array, to_gray_square
from emotion.faces import FaceBox, FaceDetector


@dataclass
class EmotionPrediction:
    label: str
    probabilities: dict[str, float]
    valence: float
    arousal: float
    box: FaceBox | None     # None when no face was found (the whole frame was classified)
    face_found: bool
    viewer: int | None = None   # the face's identity across frames, when a tracker follows it

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]


def export_onnx(module, target: str | Path) -> Path:
    """Write an EmotionModule as ONNX with outputs `probabilities` (N, 9) and `va` (N, 2); metadata keeps
    the input size, head and labels so the file is self-describing."""
    import torch

    class _Exported(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            outputs = self.inner(x)
            return self.inner.class_scores(outputs), self.inner.valence_arousal(outputs)

    size = int(module.input_size)
    return core_export_onnx(_Exported(module), torch.zeros(1, 3, size, size), target, ["faces"], ["probabilities", "va"],
                            {"input_size": size, "head": module.head, "labels": json.dumps(list(module.labels))},
                            task="emotion")


def export_checkpoint(checkpoint: str | Path, target: str | Path) -> Path:
    """The ONNX file of an emotion checkpoint (what `make weights` releases: the recognizer then loads with
    onnxruntime alone, without PyTorch or Lightning)."""
    from emotion.model import load_module

    return export_onnx(load_module(str(checkpoint)), target)


class EmotionRecognizer:
    """Face detection + emotion network + valence-arousal, for single frames (webcam) or face crops."""

    def __init__(self, weights: str | Path, detector: str = "mediapipe", backend: str = "auto", threads: int = 2,
                 tta: bool = False):
        weights = Path(weights)
        if not weights.is_file():
            raise InputError(weights, "weights file not found; run `make weights` (the released recognizer) or pass "
                                      "--weights with a checkpoint from `python -m emotion.train`")
        check_backend(backend)
        self.tta = tta
        self.detector = FaceDetector(detector)
        self._session = None
        self._module = None
        if checked_model(weights, "emotion").format == ONNX:   # by its content, whatever its extension
            self._use_session(onnx_model_session(weights, "emotion", threads)[0])
        else:
            import torch

            from emotion.model import load_module

            torch.set_num_threads(threads)
            module = load_module(str(weights))
            self.input_size, self.labels, self.head = int(module.input_size), list(module.labels), module.head
            session = cached_onnx_session(weights, "emotion", lambda target: export_onnx(module, target), threads, backend)
            if session is not None:
                self._use_session(session)
            else:
                self._module = module
        self.backend = "onnx" if self._session is not None else "torch"

    def _use_session(self, session) -> None:
        self._session = session
        meta = self._session.get_modelmeta().custom_metadata_map
        self.input_size = int(meta.get("input_size", 64))
        self.labels = json.loads(meta["labels"]) if "labels" in meta else list(CLASSES)
        self.head = meta.get("head", "class")

    # ------------------------------------------------------------------------------------ inference
    def predict_faces(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (N, 9), VA (N, 2)) for gray faces (N, S, S) of any square size."""
        from emotion.data import resize_faces

        faces = resize_faces(np.asarray(faces, dtype=np.uint8), self.input_size)
        x = faces_to_array(faces)
        probabilities, va = self._run(x)
        if self.tta:
            flipped_p, flipped_va = self._run(np.ascontiguousarray(x[..., ::-1]))
            probabilities, va = (probabilities + flipped_p) / 2, (va + flipped_va) / 2
        return probabilities, va

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._session is not None:
            probabilities, va = self._session.run(["probabilities", "va"], {"faces": x.astype(np.float32)})
            return probabilities, va
        import torch

        with torch.inference_mode():
            outputs = self._module(torch.from_numpy(x))
            return self._module.class_scores(outputs).numpy(), self._module.valence_arousal(outputs).numpy()

    def predict(self, frame: np.ndarray, bgr: bool = False) -> EmotionPrediction:
        """Emotion of the largest face in an RGB (or, with bgr=True, BGR) uint8 frame; the whole frame when no face."""
        rgb = self._rgb(frame, bgr)
        boxes = self.detector.detect(rgb)
        box = boxes[0] if boxes else None
        face = self.detector.square_crop(rgb, box) if box is not None else rgb
        probabilities, va = self.predict_faces(to_gray_square(face, self.input_size)[None])
        return self.prediction(probabilities[0], va[0], box)

    def predict_each(self, frame: np.ndarray, bgr: bool = False, max_faces: int = 0) -> list[EmotionPrediction]:
        """Emotion of every face (largest first, at most `max_faces` when > 0), one batch; [] when there is none."""
        rgb = self._rgb(frame, bgr)
        boxes = self.detector.detect(rgb)
        boxes = boxes[:max_faces] if max_faces > 0 else boxes
        if not boxes:
            return []
        faces = np.stack([to_gray_square(self.detector.square_crop(rgb, box), self.input_size) for box in boxes])
        probabilities, va = self.predict_faces(faces)
        return [self.prediction(p, v, box) for p, v, box in zip(probabilities, va, boxes)]

    @staticmethod
    def _rgb(frame: np.ndarray, bgr: bool) -> np.ndarray:
        frame = np.asarray(frame)
        if frame.ndim == 2:
            frame = np.repeat(frame[..., None], 3, axis=2)
        if frame.ndim != 3 or frame.shape[2] not in (3, 4) or frame.size == 0:
            raise ValueError(f"expected an (H, W, 3) image, got shape {frame.shape}")
        rgb = frame[..., :3][..., ::-1] if bgr else frame[..., :3]
        return np.ascontiguousarray(rgb, dtype=np.uint8)

    def prediction(self, probabilities: np.ndarray, va: np.ndarray, box: FaceBox | None,
                   viewer: int | None = None) -> EmotionPrediction:
        """The network's answer for one face (or the whole frame when `box` is None) as an EmotionPrediction."""
        scores = {label: float(p) for label, p in zip(self.labels, probabilities)}
        label = max(scores, key=scores.get)
        return EmotionPrediction(label, scores, float(va[0]), float(va[1]), box, box is not None, viewer)

    def close(self) -> None:
        self.detector.close()
