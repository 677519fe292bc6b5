"""A FastAPI service instrumented by obslab: every response carries X-Trace-ID.

Run: python examples/web_api/app.py [--port 8000] [--service-name web-api]
Try: curl -i localhost:8000/quote/paris   (X-Trace-ID finds the trace in Tempo)
     OBSLAB_PRIVACY=true ... then POST /login: the password never leaves the process.
     --error-rate 1: every quote fails with a 500 (its price backend "down"), which the
     ServiceErrorBudgetBurn alert reports within a minute or two.
"""

from __future__ import annotations

import argparse
import logging
import random

import uvicorn
from fastapi import APIRouter, FastAPI, HTTPException
from pydantic import BaseModel

from obslab import get_telemetry, init_telemetry

router = APIRouter()
log = logging.getLogger("web_api")
PRICES = {"paris": 120.0, "montreal": 95.0, "tokyo": 210.0}
ERROR_RATE = 0.0  # share of quotes that fail with a 500 (--error-rate)


class Login(BaseModel):
    user: str
    password: str


def create_app(service_name: str) -> FastAPI:
    """The app, with telemetry set up first (outgoing requests traced too)."""
    telemetry = init_telemetry(service_name=service_name, instrument=["requests"])
    app = telemetry.instrument_app(FastAPI(title="obslab web example"))
    app.include_router(router)
    return app


@router.get("/quote/{city}")
def quote(city: str) -> dict:
    telemetry = get_telemetry()
    with telemetry.span("price_lookup", city=city) as span:
        if city not in PRICES:
            log.warning("no price for %s", city)
            raise HTTPException(status_code=404, detail=f"unknown city {city}")
        if random.random() < ERROR_RATE:
            log.error("price backend unavailable for %s", city)
            raise HTTPException(status_code=500, detail="price backend unavailable")
        span.set_attribute("price.eur", PRICES[city])
    log.info("quote served", extra={"data": {"city": city, "price": PRICES[city]}})
    return {"city": city, "price": PRICES[city], **telemetry.get_trace_context()}


@router.post("/login")
def login(body: Login) -> dict:
    telemetry = get_telemetry()
    # What careless code does: secrets in span attributes and log lines. With privacy on, obslab
    # masks them before export; user.id is exported as a keyed hash (OBSLAB_PRIVACY_SECRET), or masked.
    with telemetry.span("check_credentials", **{"user.id": body.user, "password": body.password}):
        log.warning("login failed for %s with password=%s", body.user, body.password,
                    extra={"data": {"api_key": body.password}})
    return {"ok": False}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--service-name", default="web-api")
    parser.add_argument("--error-rate", type=float, default=0.0,
                        help="share of quotes (0 to 1) that fail with a 500, to see the alerts fire")
    args = parser.parse_args()
    ERROR_RATE = args.error_rate
    uvicorn.run(create_app(args.service_name), host="127.0.0.1", port=args.port, log_level="warning")
