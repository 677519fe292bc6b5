"""instrument=[...] / "auto" through entry points, and X-Trace-ID on FastAPI and Flask responses."""

import fastapi
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from flask import Flask

from obslab import instrumentation


@pytest.fixture
def uninstrumented():
    yield
    for entry_point in instrumentation.installed_instrumentors().values():  # "auto" turns on every one
        instrumentor = entry_point.load()()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()


def server_span(recorded, trace_id: str):
    spans = [s for s in recorded.spans() if f"{s.context.trace_id:032x}" == trace_id]
    return next(s for s in spans if s.kind.name == "SERVER")


def test_fastapi_response_carries_the_trace_id_of_its_server_span(recorded, uninstrumented):
    app = FastAPI()

    @app.get("/items/{item}")
    def read(item: str):
        return {"item": item}

    recorded.handle.instrument_app(app)
    response = TestClient(app).get("/items/7")
    trace_id = response.headers["X-Trace-ID"]
    assert len(trace_id) == 32 and response.json() == {"item": "7"}
    assert server_span(recorded, trace_id).name == "GET /items/{item}"


def test_flask_response_carries_the_trace_id_of_its_server_span(recorded, uninstrumented):
    app = Flask("shop")

    @app.route("/ping")
    def ping():
        return "pong"

    recorded.handle.instrument_app(app)
    response = app.test_client().get("/ping")
    trace_id = response.headers["X-Trace-ID"]
    assert response.data == b"pong"
    assert server_span(recorded, trace_id).attributes["http.route"] == "/ping"


def test_instrument_by_name_patches_apps_created_afterwards(recorded, uninstrumented):
    done = instrumentation.instrument(["fastapi"], recorded.handle._tracer_provider, recorded.handle._meter_provider)
    assert [type(i).__name__ for i in done] == ["FastAPIInstrumentor"]
    app = fastapi.FastAPI()  # the instrumented class: looked up after instrument()
    app.get("/")(lambda: {"ok": True})
    assert "X-Trace-ID" in TestClient(app).get("/").headers


def test_auto_turns_on_every_installed_instrumentor_except_logging(recorded, uninstrumented):
    done = instrumentation.instrument(["auto"], recorded.handle._tracer_provider, recorded.handle._meter_provider)
    names = {type(i).__name__ for i in done}
    assert {"FastAPIInstrumentor", "FlaskInstrumentor", "RequestsInstrumentor", "HTTPXClientInstrumentor",
            "SQLAlchemyInstrumentor"} <= names
    assert "LoggingInstrumentor" not in names


def test_already_instrumented_library_is_left_alone(recorded, uninstrumented):
    """As when opentelemetry-instrument set it up first: no second set of spans."""
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    RequestsInstrumentor().instrument()
    done = instrumentation.instrument(["requests"], recorded.handle._tracer_provider, None)
    assert done == []


@pytest.mark.parametrize("names, message", [
    (["kafka-magic"], "instrument='kafka-magic': unknown instrumentor; expected 'auto' or one of"),
    (["Django"], "instrument='Django'"),
])
def test_unknown_instrumentor_names_are_refused(names, message):
    with pytest.raises(ValueError, match=message):
        instrumentation.check_names(names)


def test_known_but_missing_instrumentor_says_which_extra_to_install(monkeypatch):
    monkeypatch.setattr(instrumentation, "installed_instrumentors", lambda: {})
    with pytest.raises(ValueError, match=r"instrument='flask'.*pip install 'obslab\[flask\]'"):
        instrumentation.check_names(["flask"])


def test_instrument_app_refuses_other_objects(recorded):
    with pytest.raises(ValueError, match="expected a FastAPI, Starlette or Flask app"):
        recorded.handle.instrument_app(object())


def test_explicit_instrumentor_whose_library_version_is_unsupported_is_refused(recorded, monkeypatch):
    monkeypatch.setattr(instrumentation, "get_dependency_conflicts", lambda deps: "sqlalchemy 9 is not supported")
    with pytest.raises(ValueError, match="instrument='sqlalchemy': sqlalchemy 9 is not supported"):
        instrumentation.instrument(["sqlalchemy"], recorded.handle._tracer_provider, None)


@pytest.mark.parametrize("names", [("fastapi",), ("auto",)])
def test_a_fastapi_app_made_after_init_with_instrument_serves_traced_requests(recording, uninstrumented, names):
    from obslab.config import Settings

    recorded = recording(Settings(service_name="web", instrument=names))  # with a logger provider, as init_telemetry
    app = fastapi.FastAPI()  # the instrumented class: it must build
    app.get("/items/{item}")(lambda item: {"item": item})
    response = TestClient(app).get("/items/7")
    assert response.json() == {"item": "7"}
    assert server_span(recorded, response.headers["X-Trace-ID"]).name == "GET /items/{item}"


@pytest.mark.parametrize("framework", ["fastapi", "flask"])
def test_instrument_app_accepts_an_app_already_instrumented_by_instrument(recording, uninstrumented, framework):
    from obslab.config import Settings

    recorded = recording(Settings(service_name="web", instrument=(framework,)))
    if framework == "fastapi":
        app = recorded.handle.instrument_app(fastapi.FastAPI())  # an _InstrumentedFastAPI: a FastAPI app still
        app.get("/ping")(lambda: "pong")
        response = TestClient(app).get("/ping")
    else:
        import flask

        app = recorded.handle.instrument_app(flask.Flask("shop"))
        app.route("/ping")(lambda: "pong")
        response = app.test_client().get("/ping")
    trace_id = response.headers["X-Trace-ID"]
    assert len([s for s in recorded.spans() if s.kind.name == "SERVER"]) == 1  # instrumented once
    assert server_span(recorded, trace_id)
