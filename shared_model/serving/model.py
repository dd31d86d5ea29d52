"""The model as both apps serve it: every answer counted in the metrics, and, with
MICROBATCH_MAX_SIZE set ("+ micro-batching"), single predictions shared out by the batcher."""

from __future__ import annotations

from collections.abc import Sequence

from shared_model.card import ModelCard
from shared_model.predictor import Predictor
from shared_model.schemas import BatchPredictResponse, Patient, PredictResponse
from shared_model.serving.metrics import observe_predictions, set_model_info
from shared_model.serving.microbatch import MicroBatcher
from shared_model.serving.reloading import ModelReloader, warm_up
from shared_model.serving.settings import Settings


class ServedModel:
    """Answers what a Predictor answers, for one app process, counted in the metrics; with a
    batcher, a single answer comes from a model call shared with whatever arrived together."""

    def __init__(self, predictor: Predictor, settings: Settings) -> None:
        # Replaced whole by swap(): an answer reads it once, so its version and prediction agree.
        self.predictor = predictor
        # `make reload`: a new model checked beside this one, then swapped in (reloading.py).
        self.reloads = ModelReloader(self, settings.model_path, settings.model_reload_poll_s)
        # Ready (the protocol's /v2/health/ready) once warm_up has run a prediction.
        self.ready = False
        self.batcher: MicroBatcher[Patient, PredictResponse] | None = None
        if settings.microbatch_max_size:
            self.batcher = MicroBatcher(
                self._responses_for,
                max_size=settings.microbatch_max_size,
                max_wait_s=settings.microbatch_max_wait_ms / 1000,
                max_queue=settings.microbatch_max_queue,
            )
        set_model_info(predictor.model_version, predictor.card.name)

    @property
    def card(self) -> ModelCard:
        return self.predictor.card

    @property
    def model_version(self) -> str:
        return self.predictor.model_version

    def swap(self, predictor: Predictor) -> None:
        """Answer with this (checked, warmed-up) model from now on; answers under way finish
        with the one they started with."""
        old = self.predictor
        self.predictor = predictor
        set_model_info(
            predictor.model_version, predictor.card.name, (old.model_version, old.card.name)
        )

    def warm_up(self) -> None:
        """One prediction before the first request (left out of the metrics), then ready: a
        model that loads but cannot predict never tells an orchestrator it is ready."""
        warm_up(self.predictor)
        self.ready = True

    def response_for(self, patient: Patient) -> PredictResponse:
        if self.batcher is not None:
            return self.batcher.result_for(patient)
        return self._responses_for([patient])[0]

    async def response_for_async(self, patient: Patient) -> PredictResponse:
        """Batched only: the answer, awaited without holding a thread."""
        assert self.batcher is not None, "response_for_async needs MICROBATCH_MAX_SIZE > 0"
        return await self.batcher.result_for_async(patient)

    def batch_response_for(self, patients: Sequence[Patient]) -> BatchPredictResponse:
        answer = self.predictor.batch_response_for(patients)
        observe_predictions(answer.predictions)
        return answer

    def close(self) -> None:
        """Stop watching for reloads; finish the batches under way and stop the batching
        thread, if there is one."""
        self.reloads.stop()
        if self.batcher is not None:
            self.batcher.close()

    def _responses_for(self, patients: list[Patient]) -> list[PredictResponse]:
        answers = self.predictor.responses_for(patients)
        observe_predictions([answer.prediction for answer in answers])
        return answers
