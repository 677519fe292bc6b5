"""Issue 19: one record per obslab setting, from which the loader, the settings table of docs/settings.md and the
SDK block of .env.example all come; a drift between them fails here."""

from __future__ import annotations

import dataclasses
import inspect

from lab import REPO
from obslab import config, settings
from obslab.telemetry import init_telemetry

NOT_SETTINGS = {"config_file", "env_file"}  # where settings are read from, not settings


def test_the_readme_settings_table_is_the_generated_one():
    text = (REPO / "docs/settings.md").read_text(encoding="utf-8")
    fresh = settings.readme_table()
    lines = fresh.splitlines()
    assert settings.generated_part(text, lines[0], lines[-1]) == fresh, \
        "docs/settings.md settings table is stale: run obslab settings-docs"


def test_the_env_example_sdk_block_is_the_generated_one():
    text = (REPO / ".env.example").read_text(encoding="utf-8")
    fresh = settings.env_example()
    lines = fresh.splitlines()
    assert settings.generated_part(text, lines[0], lines[-1]) == fresh, \
        ".env.example SDK block is stale: run obslab settings-docs"


def test_every_init_argument_and_settings_field_has_exactly_one_record():
    arguments = set(inspect.signature(init_telemetry).parameters) - NOT_SETTINGS
    fields = {f.name for f in dataclasses.fields(config.Settings)} - {"sources"}
    records = [record.name for record in settings.SETTINGS]
    assert len(records) == len(set(records))
    assert set(records) == fields
    assert arguments <= set(records), arguments - set(records)


def test_every_record_names_a_variable_the_loader_reads():
    for record in settings.SETTINGS:
        for variable in filter(None, (record.env, *record.renamed_from)):
            assert config._VARIABLES[variable][0] == record.name
