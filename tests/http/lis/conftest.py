from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def lis_app(database_url: str):  # noqa: ANN201
    from functions_framework import create_app  # noqa: PLC0415

    return create_app(target="lis_consumer", source=str(ROOT / "functions" / "lis_consumer" / "main.py"),
                      signature_type="cloudevent")


@pytest.fixture()
def lis_client(lis_app):  # noqa: ANN001, ANN201
    return lis_app.test_client()
