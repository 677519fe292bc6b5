"""Evaluation results as the GenAI conventions have them: the event ``gen_ai.evaluation.result``
(a log record named by ``event_name``, parented to the evaluated span), and obslab's score histogram
``obslab.gen_ai.evaluation.score`` by evaluation name and model; plus an adapter that turns a
``pydantic-evals`` report into those events.

=================================  ======  ============================================================
instrument                         unit    Prometheus
=================================  ======  ============================================================
obslab.gen_ai.evaluation.score     1       obslab_gen_ai_evaluation_score_bucket/_sum/_count
                                           (gen_ai_evaluation_name, gen_ai_request_model)
=================================  ======  ============================================================
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from opentelemetry import _logs, metrics, trace
from opentelemetry._logs import Logger, SeverityNumber
from opentelemetry.metrics import Meter
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, TraceFlags

from obslab._diagnostics import guarded

EVENT = "gen_ai.evaluation.result"
SCORE_METRIC = "obslab.gen_ai.evaluation.score"
NAME = "gen_ai.evaluation.name"
SCORE_VALUE = "gen_ai.evaluation.score.value"
SCORE_LABEL = "gen_ai.evaluation.score.label"
EXPLANATION = "gen_ai.evaluation.explanation"
RESPONSE_ID = "gen_ai.response.id"
# Scores are most often 0..1; ratings (1..5, 0..10) fit too.
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 2, 3, 4, 5, 10)


class Evaluations:
    """Records evaluation results on one logger (events) and one meter (scores)."""

    def __init__(self, logger: Logger, meter: Meter) -> None:
        self._logger = logger
        self._scores = meter.create_histogram(
            SCORE_METRIC, unit="1", description="Evaluation scores of GenAI outputs, by evaluation name and model",
            explicit_bucket_boundaries_advisory=SCORE_BUCKETS)

    @guarded("record_evaluation")
    def record(self, name: str, *, score: float | None = None, label: str | None = None,
               explanation: str | None = None, span: Span | SpanContext | None = None, model: str | None = None,
               response_id: str | None = None, error_type: str | None = None) -> None:
        """One ``gen_ai.evaluation.result`` event under ``span`` (default: the current span) and, with a
        ``score``, one ``obslab.gen_ai.evaluation.score`` point by ``name`` and model. The model and
        response id default to the evaluated span's ``gen_ai.response.model`` (else request model)
        and ``gen_ai.response.id``."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"evaluation name {name!r}: expected a non-empty string")
        if score is not None:
            if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
                raise ValueError(f"evaluation {name!r}: score {score!r} is not a finite number")
            score = float(score)
        if score is None and label is None and error_type is None:
            raise ValueError(f"evaluation {name!r}: give a score, a label or an error_type")
        if span is None:
            span = trace.get_current_span()
        evaluated = getattr(span, "attributes", None) or {}
        context_of_span = span if isinstance(span, SpanContext) else span.get_span_context()
        model = model or evaluated.get("gen_ai.response.model") or evaluated.get("gen_ai.request.model")
        response_id = response_id or evaluated.get(RESPONSE_ID)
        attributes: dict[str, Any] = {NAME: name}
        for key, value in ((SCORE_VALUE, score), (SCORE_LABEL, label), (EXPLANATION, explanation),
                           (RESPONSE_ID, response_id), ("error.type", error_type)):
            if value is not None:
                attributes[key] = value if key == SCORE_VALUE else str(value)
        context = trace.set_span_in_context(NonRecordingSpan(context_of_span)) if context_of_span.is_valid else None
        self._logger.emit(event_name=EVENT, attributes=attributes, context=context,
                          severity_number=SeverityNumber.WARN if error_type else SeverityNumber.INFO,
                          severity_text="WARN" if error_type else "INFO")
        if score is not None:
            labels = {NAME: name}
            if model:
                labels["gen_ai.request.model"] = str(model)
            self._scores.record(score, labels, context=context)


def span_context(trace_id: str | int, span_id: str | int) -> SpanContext:
    """The context of a span known by its ids (hex strings, as pydantic-evals and logs give them)."""
    return SpanContext(int(trace_id, 16) if isinstance(trace_id, str) else trace_id,
                       int(span_id, 16) if isinstance(span_id, str) else span_id,
                       is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))


def record_report(report: Any, telemetry: Any = None, *, span: Span | SpanContext | None = None,
                  spans: Mapping[str, Span | SpanContext] | None = None, model: str | None = None) -> int:
    """Turn a ``pydantic_evals`` ``EvaluationReport`` into ``gen_ai.evaluation.result`` events (and
    score points); returns how many were recorded.

    Each case's scores become scored results, its labels labelled ones, its assertions results
    labelled ``pass``/``fail`` with score 1.0/0.0, and its evaluator failures results with an
    ``error.type``; each evaluator's reason is the explanation. A case's events go under its own
    span when known: the case's trace and span ids in the report (pydantic-evals fills them when it
    traces through Logfire), else ``spans[case name]``, else ``span`` (default: the current span,
    such as one around the whole evaluation run)."""
    # Without a handle, the global providers: obslab's once it is set up (evaluations import no handle).
    handle = telemetry or Evaluations(_logs.get_logger("obslab.genai"), metrics.get_meter("obslab.genai"))
    record = handle.record_evaluation if telemetry is not None else handle.record
    recorded = 0
    for case in getattr(report, "cases", ()):
        parent: Any = span
        if getattr(case, "trace_id", None) and getattr(case, "span_id", None):
            parent = span_context(case.trace_id, case.span_id)
        elif spans and case.name in spans:
            parent = spans[case.name]
        common = {"span": parent, "model": model}
        for result in case.scores.values():
            record(result.name, score=result.value, explanation=result.reason, **common)
            recorded += 1
        for result in case.labels.values():
            record(result.name, label=str(result.value), explanation=result.reason, **common)
            recorded += 1
        for result in case.assertions.values():
            record(result.name, score=1.0 if result.value else 0.0,
                   label="pass" if result.value else "fail", explanation=result.reason, **common)
            recorded += 1
        for failure in getattr(case, "evaluator_failures", ()):
            record(failure.name, error_type=getattr(failure, "error_type", None) or "EvaluatorFailure",
                   explanation=getattr(failure, "error_message", None), **common)
            recorded += 1
    return recorded
