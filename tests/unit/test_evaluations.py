"""Issue 20, part 3: evaluation results as the conventions' ``gen_ai.evaluation.result`` event under
the evaluated span, a score metric by evaluation name and model, and pydantic-evals reports."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from obslab.evaluations import EVENT, SCORE_METRIC, record_report, span_context


def events(recorded) -> list:
    return [r for r in recorded.logs() if r.event_name == EVENT]


def scores(recorded) -> list:
    recorded.handle.force_flush(2)
    data = recorded._reader.get_metrics_data()
    if data is None:
        return []
    return [p for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics if m.name == SCORE_METRIC
            for p in m.data.data_points]


def test_an_evaluation_is_an_event_under_the_evaluated_span_and_a_score_by_name_and_model(recorded):
    t = recorded.handle
    with t.trace_llm_call("gpt-4o-mini", "openai") as chat:
        t.record_llm_usage("gpt-4o-mini", "openai", 100, 20)
    t.record_evaluation("relevance", score=0.8, label="relevant", explanation="Answers the route asked for",
                        span=chat, response_id="chatcmpl-1")  # after the call ended, as evaluations run
    data = recorded._reader.get_metrics_data()  # first: each collection empties the exemplar reservoirs
    (exemplar,) = [e for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
                   if m.name == SCORE_METRIC for p in m.data.data_points for e in p.exemplars]
    (event,) = events(recorded)
    (span,) = recorded.spans()
    assert (event.trace_id, event.span_id) == (span.context.trace_id, span.context.span_id)
    assert dict(event.attributes) == {
        "gen_ai.evaluation.name": "relevance", "gen_ai.evaluation.score.value": 0.8,
        "gen_ai.evaluation.score.label": "relevant", "gen_ai.evaluation.explanation": "Answers the route asked for",
        "gen_ai.response.id": "chatcmpl-1"}
    assert event.body is None
    (point,) = scores(recorded)
    assert dict(point.attributes) == {"gen_ai.evaluation.name": "relevance", "gen_ai.request.model": "gpt-4o-mini"}
    assert (point.count, point.sum) == (1, 0.8)
    assert exemplar.span_id == span.context.span_id  # the score's exemplar opens the evaluated call


def test_the_current_span_is_the_default_and_a_label_alone_records_no_score(recorded):
    t = recorded.handle
    with t.span("answer") as answer:
        t.record_evaluation("tone", label="polite")
    (event,) = events(recorded)
    assert event.span_id == answer.get_span_context().span_id
    assert event.attributes["gen_ai.evaluation.score.label"] == "polite"
    assert "gen_ai.evaluation.score.value" not in event.attributes
    assert scores(recorded) == []


def test_a_span_known_only_by_its_ids_and_a_model_given(recorded):
    trace_id, span_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    recorded.handle.record_evaluation("faithfulness", score=3, span=span_context(trace_id, span_id), model="claude-x")
    (event,) = events(recorded)
    assert (f"{event.trace_id:032x}", f"{event.span_id:016x}") == (trace_id, span_id)
    (point,) = scores(recorded)
    assert point.attributes["gen_ai.request.model"] == "claude-x" and point.sum == 3.0


@pytest.mark.parametrize("arguments", [{"name": ""}, {"name": "x"}, {"name": "x", "score": float("nan")},
                                       {"name": "x", "score": "high"}, {"name": "x", "score": True}])
def test_a_bad_evaluation_is_reported_and_never_raises(recorded, arguments, caplog):
    name = arguments.pop("name")
    recorded.handle.record_evaluation(name, **arguments)
    assert events(recorded) == [] and scores(recorded) == []
    assert "record_evaluation failed" in caplog.text


def test_a_pydantic_evals_report_becomes_evaluation_events(recorded):
    import pydantic_evals  # obslab[evals], part of obslab[test]
    from pydantic_evals.evaluators import EqualsExpected, Evaluator, EvaluatorContext

    t = recorded.handle
    chats = {}

    @dataclass
    class Correct(Evaluator):
        def evaluate(self, ctx: EvaluatorContext) -> float:
            return 1.0 if ctx.output == ctx.expected_output else 0.25

    def answer(city: str) -> str:
        with t.trace_llm_call("gpt-4o-mini", "openai") as chat:
            t.record_llm_usage("gpt-4o-mini", "openai", 10, 2)
            chats[city] = chat
        return city.upper()

    dataset = pydantic_evals.Dataset(name="trips", cases=[
        pydantic_evals.Case(name="paris", inputs="paris", expected_output="PARIS"),
        pydantic_evals.Case(name="lyon", inputs="lyon", expected_output="LYONS")],
        evaluators=[Correct(), EqualsExpected()])
    with t.span("evaluation run") as run:
        report = dataset.evaluate_sync(answer, progress=False)
        assert record_report(report, t, spans={"paris": chats["paris"]}, model="gpt-4o-mini") == 4
    found = {(e.attributes["gen_ai.evaluation.name"], e.span_id): dict(e.attributes) for e in events(recorded)}
    paris, run_id = chats["paris"].get_span_context().span_id, run.get_span_context().span_id
    assert set(found) == {("Correct", paris), ("EqualsExpected", paris), ("Correct", run_id),
                          ("EqualsExpected", run_id)}
    assert found[("EqualsExpected", run_id)]["gen_ai.evaluation.score.label"] == "fail"
    assert found[("EqualsExpected", paris)]["gen_ai.evaluation.score.label"] == "pass"
    assert found[("Correct", run_id)]["gen_ai.evaluation.score.value"] == 0.25
    by_name = {p.attributes["gen_ai.evaluation.name"]: (p.count, p.sum) for p in scores(recorded)}
    assert by_name == {"Correct": (2, 1.25), "EqualsExpected": (2, 1.0)}
