"""One RunInference adapter shape for every step that runs a model on segment records.

A model step is ``RunInference(handler)`` over the stream of ``SegmentRecord`` and
``DeadLetter`` elements. ``RecordHandler`` holds what every such handler shares (batch
bounds from a ``ModelRuntime``, byte counts, metrics namespace, the inputs to drop after
the step); ``SegmentModelHandler`` is the modality shape. It:

* passes dead letters and recording ends through untouched;
* never computes the modality where the policy disables it (the policy step already
  recorded ``disabled_by_policy``);
* asks the modality's ``prepare`` for the model input, or for the reason it is absent;
* runs the model once per batch on the prepared inputs (``predict``);
* adds the result to each record and clears the inputs no later step reads (``drop``,
  decided by ``transforms/plan.py`` from the configured steps, not by the handler).

A model failure on a batch is retried item by item so one bad segment cannot spoil its
batch; an item that still fails gets the modality marked absent with ``model_error``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler

from sentistream.transforms.allocator import tune_allocator
from sentistream.transforms.config import ModelRuntime
from sentistream.transforms.records import (
    REASON_MODEL_ERROR,
    Element,
    ModalityResult,
    SegmentRecord,
)

ModelT = TypeVar("ModelT")
InputT = TypeVar("InputT")

_LOG = logging.getLogger(__name__)


def configure_torch(runtime: ModelRuntime) -> str:
    """Apply thread settings (and :func:`tune_allocator`), check the device; returns the
    device string."""
    import torch

    tune_allocator()
    if runtime.threads > 0:
        torch.set_num_threads(runtime.threads)
    if runtime.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but torch sees no CUDA device")
    return runtime.device


def from_prediction(modality: str, prediction: Any, model_id: str, **fields: Any) -> ModalityResult:
    """A present result from a model prediction with ``valence``, ``confidence``, ``probs``."""
    return ModalityResult(
        modality=modality,
        present=True,
        valence=float(prediction.valence),
        confidence=float(prediction.confidence),
        model_id=model_id,
        probs=dict(prediction.probs),
        **fields,
    )


class RecordHandler(ModelHandler[Element, Element, ModelT]):
    """What every model step over segment records shares.

    Args:
        runtime: device and batch bounds.
        drop: the inputs (``records.INPUTS``) to clear on each record after this step.
    """

    namespace: str = ""

    def __init__(self, runtime: ModelRuntime, drop: Iterable[str] = ()) -> None:
        super().__init__()
        if not self.namespace:
            raise TypeError(f"{type(self).__name__} must set `namespace`")
        self._runtime = runtime
        self._drop = tuple(drop)

    def batch_elements_kwargs(self) -> Mapping[str, Any]:
        return {
            "min_batch_size": self._runtime.min_batch_size,
            "max_batch_size": self._runtime.max_batch_size,
        }

    def run_inference(
        self,
        batch: Sequence[Element],
        model: ModelT,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[Element]:
        """Beam's entry point; the step itself is ``run_batch`` (no step reads
        ``inference_args``)."""
        return self.run_batch(batch, model)

    def run_batch(self, batch: Sequence[Element], model: ModelT) -> list[Element]:
        """The batch after this step, element by element in order (dead letters as
        they came)."""
        raise NotImplementedError

    def get_num_bytes(self, batch: Sequence[Element]) -> int:
        # The default pickles the whole batch (frames and audio) just to count bytes.
        total = 0
        for el in batch:
            if isinstance(el, SegmentRecord):
                total += 0 if el.audio is None else el.audio.nbytes
                total += sum(f.rgb.nbytes for f in el.frames)
        return total

    def get_metrics_namespace(self) -> str:
        return f"{self.namespace}.RunInference"


class SegmentModelHandler(RecordHandler[ModelT], Generic[ModelT, InputT]):
    """Base class of the modality handlers: subclasses set ``modality`` and implement
    ``load``, ``prepare`` and ``predict``."""

    modality: str = ""

    def __init__(self, runtime: ModelRuntime, drop: Iterable[str] = ()) -> None:
        if not self.modality:
            raise TypeError(f"{type(self).__name__} must set `modality`")
        self.namespace = f"sentistream.{self.modality}"
        super().__init__(runtime, drop)
        self._inputs = Metrics.counter(self.namespace, "model_inputs")
        self._absent = Metrics.counter(self.namespace, "absent")
        self._errors = Metrics.counter(self.namespace, "model_errors")

    # -- to implement -------------------------------------------------------------
    def load(self) -> ModelT:
        raise NotImplementedError

    def prepare(self, record: SegmentRecord) -> InputT | ModalityResult:
        """The model input for ``record``, or an absent result saying why there is none."""
        raise NotImplementedError

    def predict(self, model: ModelT, inputs: Sequence[InputT]) -> list[ModalityResult]:
        raise NotImplementedError

    # -- ModelHandler ---------------------------------------------------------------
    def load_model(self) -> ModelT:
        configure_torch(self._runtime)
        return self.load()

    def run_batch(self, batch: Sequence[Element], model: ModelT) -> list[Element]:
        out: list[Element] = list(batch)
        todo: list[tuple[int, InputT]] = []
        for i, el in enumerate(batch):
            if not isinstance(el, SegmentRecord):  # dead letters, recording ends
                continue
            if not el.allows(self.modality):
                out[i] = el.dropping(self._drop)
                continue
            prepared = self.prepare(el)
            if isinstance(prepared, ModalityResult):
                self._absent.inc()
                out[i] = el.with_result(prepared, self._drop)
            else:
                todo.append((i, prepared))
        if todo:
            self._inputs.inc(len(todo))
            results = self._predict_isolating_failures(model, [p for _, p in todo])
            for (i, _), result in zip(todo, results, strict=True):
                record = batch[i]
                assert isinstance(record, SegmentRecord)
                out[i] = record.with_result(result, self._drop)
        return out

    def _predict_isolating_failures(
        self, model: ModelT, inputs: list[InputT]
    ) -> list[ModalityResult]:
        try:
            return self.predict(model, inputs)
        except Exception:  # noqa: BLE001 - retried one by one below; nothing is lost
            if len(inputs) == 1:
                return [self._error_result(inputs[0], model)]
        results = []
        for item in inputs:
            try:
                results.extend(self.predict(model, [item]))
            except Exception:  # noqa: BLE001 - recorded on the row as model_error
                results.append(self._error_result(item, model))
        return results

    def _error_result(self, item: InputT, model: ModelT) -> ModalityResult:
        _LOG.exception("%s model failed on one segment", self.modality)
        self._errors.inc()
        return ModalityResult(
            modality=self.modality,
            present=False,
            reason=REASON_MODEL_ERROR,
            model_id=getattr(model, "model_id", None),
        )
