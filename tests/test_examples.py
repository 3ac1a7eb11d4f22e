"""Every program in examples/ runs as its README says, and shows what it claims: run in a
child process with this interpreter, on 127.0.0.1 or the in-memory link, bounded in time."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.cli_run import REPO, output, quicsim_shim, run

EXAMPLES = REPO / "examples"


def test_every_example_is_listed_in_its_readme():
    listed = (EXAMPLES / "README.md").read_text()
    shipped = {p.name for p in EXAMPLES.iterdir() if p.name != "README.md" and not p.name.startswith((".", "__"))}
    assert shipped == {"wrapper", "late_send_race.py", "listen_connect.py", "fuzz_loop.sh"}
    for name in shipped:
        assert f"`{name}" in listed, name


def test_the_wrapper_tests_pass():
    # the wrapper's own folder, its pyproject.toml and its tests, as a user's project runs them
    proc = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
               cwd=EXAMPLES / "wrapper")
    assert proc.returncode == 0, output(proc)
    assert "4 passed" in proc.stdout, output(proc)


def test_the_wrapper_tests_fail_when_the_wrapper_keeps_canceled_buffers(tmp_path):
    # the same tests against the buggy wrapper: the buffer check names the leaked buffer
    project = tmp_path / "wrapper"
    project.mkdir()
    for name in ("pyproject.toml", "test_buffered_sender.py"):
        (project / name).write_text((EXAMPLES / "wrapper" / name).read_text())
    source = (EXAMPLES / "wrapper" / "buffered_sender.py").read_text()
    buggy = source.replace("free_canceled: bool = True", "free_canceled: bool = False")
    assert buggy != source
    (project / "buffered_sender.py").write_text(buggy)
    proc = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                "-k", "every_buffer_is_freed"], cwd=project)
    assert proc.returncode == 1, output(proc)
    assert "2 failed" in proc.stdout and "still held by the application, but its send completed: 'buf-" in proc.stdout


def test_the_scenario_file_passes_on_both_transports(tmp_path):
    bin_dir = quicsim_shim(tmp_path)
    for extra in ([], ["--transport", "memory"]):
        proc = run(["quicsim", "run", str(EXAMPLES / "late_send_race.py"), *extra], cwd=tmp_path, bin_dir=bin_dir)
        assert proc.returncode == 0, output(proc)
        assert "4 passed, 0 failed" in proc.stdout and "expected leak caught" in proc.stdout, output(proc)


def test_the_scenario_file_fails_when_the_late_send_is_lost(tmp_path):
    bin_dir = quicsim_shim(tmp_path)
    proc = run(["quicsim", "run", str(EXAMPLES / "late_send_race.py"), "-k", "late_send_is_canceled",
                "--repeat", "1", "--transport", "memory", "--inject", "drop-send-after-shutdown"],
               cwd=tmp_path, bin_dir=bin_dir)
    assert proc.returncode == 1, output(proc)
    assert "LEAK" in proc.stdout and "'req-late'" in proc.stdout, output(proc)


def test_the_listen_connect_script(tmp_path):
    proc = run([sys.executable, str(EXAMPLES / "listen_connect.py")], cwd=tmp_path)
    assert proc.returncode == 0, output(proc)
    lines = proc.stdout.splitlines()
    assert sorted(line for line in lines if line.startswith("SEND_COMPLETE")) == [
        "SEND_COMPLETE msg-0 acked", "SEND_COMPLETE msg-1 acked", "SEND_COMPLETE msg-2 acked"]
    assert "server read: hello from quicsim" in lines
    assert any(line.startswith("client ledger: ledger: ok: 3 sends accepted, 3 completions") for line in lines), lines


def test_the_fuzz_loop_finds_replays_and_explains_the_leak(tmp_path):
    bin_dir = quicsim_shim(tmp_path)
    work = tmp_path / "work"
    proc = run(["bash", str(EXAMPLES / "fuzz_loop.sh"), str(work)], cwd=tmp_path, bin_dir=bin_dir)
    assert proc.returncode == 0, output(proc)
    assert list((work / "findings").glob("fuzz-leak-seed*.py")), output(proc)
    traces = list((work / "traces").glob("*.jsonl"))
    assert traces, output(proc)
    assert "1 LEAKED" in proc.stdout and "LEAKED    no SEND_COMPLETE" in proc.stdout, output(proc)
    assert proc.stdout.rstrip().endswith(f"found, replayed and explained the leak in {work}")

