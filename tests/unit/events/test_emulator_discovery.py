"""`make dev` finds the Pub/Sub emulator where these machines install it, or says it is absent."""

from pathlib import Path

from shared.devtools.devrouter import emulator


def test_the_installed_binary_is_preferred(monkeypatch, tmp_path):
    binary = tmp_path / "cloud-pubsub-emulator"
    binary.write_text("#!/bin/sh\n")
    monkeypatch.setattr(emulator, "EMULATOR_BINARY", binary)
    assert emulator.emulator_command("127.0.0.1", 8085) == [str(binary), "--host=127.0.0.1", "--port=8085"]


def test_gcloud_with_the_emulator_component_is_the_fallback(monkeypatch, tmp_path):
    sdk = tmp_path / "google-cloud-sdk"
    (sdk / "bin").mkdir(parents=True)
    (sdk / "platform" / "pubsub-emulator").mkdir(parents=True)
    gcloud = sdk / "bin" / "gcloud"
    gcloud.write_text("#!/bin/sh\n")
    gcloud.chmod(0o755)
    monkeypatch.setattr(emulator, "EMULATOR_BINARY", tmp_path / "absent")
    monkeypatch.setenv("PATH", str(sdk / "bin"))
    assert emulator.emulator_command("127.0.0.1", 9000) == [str(gcloud), "beta", "emulators", "pubsub", "start",
                                                            "--host-port=127.0.0.1:9000"]


def test_without_either_there_is_no_emulator(monkeypatch, tmp_path):
    monkeypatch.setattr(emulator, "EMULATOR_BINARY", tmp_path / "absent")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert emulator.emulator_command("127.0.0.1", 8085) is None
    assert Path(tmp_path / "absent").exists() is False
