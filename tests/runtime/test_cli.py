"""`picojepa-run`'s command line: an option that does not apply to the input it is given, a name
that no topic could carry, a malformed URL to publish to or to vote over are usage errors (exit 2,
one line, naming the option) before anything is opened or connected."""
import pytest
from click.testing import CliRunner

from picojepa.runtime.cli import main as run_main
from picojepa.runtime.net.node import main as serve_main

NO_BUNDLE = "/nonexistent/bundle"  # opening it would be exit 3: a usage error comes before
SOURCE = "rtsp://10.0.0.7/sub"


@pytest.mark.parametrize("args,option", [
    (["clip.mp4", "--publish", "mqtt://127.0.0.1:1883"], "--publish"),
    (["clip.mp4", "--duration", "5"], "--duration"),
    (["clip.mp4", "--http", "127.0.0.1:8080"], "--http"),
    (["clip.mp4", "--name", "door"], "--name"),
    (["clip.mp4", "--on-change"], "--on-change"),
    (["clip.mp4", "--rtsp-transport", "udp"], "--rtsp-transport"),
    ([SOURCE, "--clips", "3"], "--clips"),
    ([SOURCE, "--placement", "keyframe"], "--placement"),
    ([SOURCE, "--labels-from-folders"], "--labels-from-folders"),
    ([SOURCE, "--prefetch"], "--prefetch"),
    ([SOURCE, "--decode-device", "cuda"], "--decode-device"),
    ([SOURCE, "--deadline-ms", "500"], "--deadline-ms"),
    ([SOURCE, "--name", "x" * 65, "--publish", "mqtt://127.0.0.1:1883"], "--name"),
    ([SOURCE, "--name", "x" * 70000, "--publish", "mqtt://127.0.0.1:1883"], "--name"),
    ([SOURCE, "--publish", "mqtt://127.0.0.1:18x3"], "--publish"),
    ([SOURCE, "--publish", "mqtt://:1883"], "--publish"),
    ([SOURCE, "--publish", "nats://127.0.0.1:99999"], "--publish"),
    ([SOURCE, "--publish", "ftp://127.0.0.1"], "--publish"),
    (["clip.mp4", "--nodes", "nats://10.0.0.2:42x2"], "--nodes"),
    (["clip.mp4", "--nodes", "nats://:4222"], "--nodes"),
    (["clip.mp4", "--nodes", "nats://10.0.0.2:4222 /x"], "--nodes"),
])
def test_an_option_that_does_not_apply_or_a_bad_value_is_a_usage_error_naming_it(args, option):
    r = CliRunner().invoke(run_main, ["--bundle", NO_BUNDLE, *args])
    assert r.exit_code == 2, (r.exit_code, r.stderr[:300])
    assert len(r.stderr.strip().splitlines()) == 1 and option in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr) < 400  # the name is not echoed back whole


def test_name_with_a_streams_or_camera_file_is_a_usage_error(tmp_path):
    streams = tmp_path / "streams.txt"
    streams.write_text(f"{SOURCE} door\n")
    r = CliRunner().invoke(run_main, ["--bundle", NO_BUNDLE, "--streams", str(streams), "--name", "door"])
    assert r.exit_code == 2 and "--name" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_streams_file_whose_names_share_a_topic_is_refused_naming_both(tmp_path):
    streams = tmp_path / "streams.txt"
    streams.write_text(f"{SOURCE} door.1\nrtsp://10.0.0.8/sub door_1\n")
    r = CliRunner().invoke(run_main, ["--bundle", NO_BUNDLE, "--streams", str(streams)])
    assert r.exit_code == 3 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert str(streams) in r.stderr and "'door.1' and 'door_1'" in r.stderr and "'door_1'" in r.stderr


def test_a_malformed_nats_url_for_serve_is_a_usage_error():
    r = CliRunner().invoke(serve_main, ["--bundle", NO_BUNDLE, "--member", "1", "--nats", "nats://10.0.0.2:99999"])
    assert r.exit_code == 2 and "--nats" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_options_that_apply_everywhere_stay_accepted_on_both_kinds():
    """--no-progress (service units pass it), --window, --region: not refused on either kind (the
    run then fails on the missing bundle, exit 3)."""
    for source in ("clip.mp4", SOURCE):
        r = CliRunner().invoke(run_main, ["--bundle", NO_BUNDLE, source, "--no-progress", "--window", "1",
                                          "--region", "0,0,0.5,0.5", "--format", "json"])
        assert r.exit_code == 3, (source, r.stderr)


@pytest.mark.parametrize("args,option", [
    (["--explain", "clip.mp4", "--out", "why", "--clips", "3"], "--clips"),
    (["--explain", "clip.mp4", "--out", "why", "--format", "json"], "--format"),
    (["--explain", "clip.mp4", "--out", "why", "--region", "0,0,0.5,0.5"], "--region"),
    (["--explain", "clip.mp4", "--out", "why", "--window", "1"], "--window"),
    (["--explain", "clip.mp4", "--out", "why", "--nodes", "nats://10.0.0.2:4222"], "--nodes"),
    (["clip.mp4", "--nats-token", "s3cret"], "--nats-token"),
    (["clip.mp4", "--connect-timeout", "2"], "--connect-timeout"),
    (["clip.mp4", "--nodes", "nats://10.0.0.2:4222", "--provider", "cpu"], "--provider"),
    (["clip.mp4", "--nodes", "nats://10.0.0.2:4222", "--variant", "int8"], "--variant"),
    (["clip.mp4", "--nodes", "nats://10.0.0.2:4222", "--threads", "2"], "--threads"),
    ([SOURCE, "--format", "csv"], "--format csv"),
])
def test_an_option_the_input_ignores_is_a_usage_error_naming_it(args, option):
    """--explain takes the bundle, provider, variant, threads and vote only; the NATS options need
    --nodes (--connect-timeout: or a live source); the in-process options mean nothing to --nodes;
    a live source writes text or JSON lines, no CSV."""
    r = CliRunner().invoke(run_main, ["--bundle", NO_BUNDLE, *args])
    assert r.exit_code == 2, (r.exit_code, r.stderr[:300])
    assert len(r.stderr.strip().splitlines()) == 1 and option in r.stderr and "Traceback" not in r.stderr


def test_the_options_explain_and_nodes_take_stay_accepted(tmp_path):
    """Refused only what is ignored: --explain with its own options, --nodes with the NATS token
    and --connect-timeout, a live source with --connect-timeout, a NATS token from the environment
    on files (the host's setting, not this run's request) go on to the missing bundle (exit 3)."""
    runs = [(["--explain", "clip.mp4", "--out", str(tmp_path / "why"), "--provider", "cpu", "--vote", "soft",
              "--variant", "fp16", "--threads", "2"], {}),
            (["clip.mp4", "--nodes", "nats://127.0.0.1:9", "--nats-token", "t", "--connect-timeout", "0.2"], {}),
            ([SOURCE, "--connect-timeout", "2"], {}),
            (["clip.mp4"], {"PICOJEPA_NATS_TOKEN": "s3cret"})]
    for args, env in runs:
        r = CliRunner(env=env).invoke(run_main, ["--bundle", NO_BUNDLE, *args])
        assert r.exit_code == 3, (args, r.stderr)
