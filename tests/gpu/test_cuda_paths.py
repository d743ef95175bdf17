"""Each encoder's CUDA path, exercised where a GPU exists (skipped elsewhere).

Every model takes ``device`` from the options, so a GPU worker needs configuration only;
these tests prove the CUDA code paths agree with the CPU ones.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gpu


def test_face_model_on_cuda_matches_cpu():
    from skimage import data as skdata

    from sentistream.models.face.detect import crop_faces, detect_faces
    from sentistream.models.face.model import FaceExpressionModel

    rgb = skdata.astronaut()
    crops = crop_faces(rgb, detect_faces(rgb))
    cpu = FaceExpressionModel.load(device="cpu").predict(crops)
    gpu = FaceExpressionModel.load(device="cuda").predict(crops)
    np.testing.assert_allclose(cpu, gpu, atol=1e-3)


def test_text_model_on_cuda_matches_cpu():
    from sentistream.models.text.model import TextSentimentModel

    texts = ["I love it", "This is terrible", "The train leaves at nine"]
    cpu = TextSentimentModel.load(device="cpu").predict(texts)
    gpu = TextSentimentModel.load(device="cuda").predict(texts)
    for a, b in zip(cpu, gpu, strict=True):
        assert a.valence == pytest.approx(b.valence, abs=1e-2)


def test_pipeline_runs_with_device_cuda(tmp_path):
    from sentistream.pipelines.cli import main
    from sentistream.pipelines.demo.synth import make_sample

    sample = make_sample(tmp_path / "sample")
    rc = main(
        [
            "run",
            "--input",
            str(sample),
            "--output",
            str(tmp_path / "out"),
            "--device",
            "cuda",
            "--whisper-compute-type",
            "float16",
            "--asr-compute-type",
            "float16",
        ]
    )
    assert rc == 0
