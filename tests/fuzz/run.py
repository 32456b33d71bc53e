#!/usr/bin/env python3
"""run.py - fuzz one target for a fixed time on a copy of its seed corpus.

The test command of every target in meson suite "fuzz" (tests/fuzz/meson.build),
also what tools/fuzz runs. It copies the committed corpus (tests/fuzz/corpus/NAME)
to a temporary directory, so that libFuzzer's new inputs never land in the tree,
runs the target with -max_total_time=SECONDS, and prints one line: executions,
coverage, corpus growth, and whether it crashed.

Exit status 0 when libFuzzer ran to the end without a finding; 1 on any crash,
sanitizer report, leak, timeout of one input (-timeout) or out-of-memory, with
the tail of libFuzzer's log and the path of the saved input printed. Crashing
inputs and the full log (fuzz.log) stay in the --out directory; nothing there
is ever deleted, so earlier crashes survive a later clean run.

SECONDS is --seconds, else the environment's OVL_FUZZ_SECONDS, else 20.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

DEFAULT_SECONDS = 20
# How long one input may take before libFuzzer calls it a hang (seconds).
INPUT_TIMEOUT = 10
# Past -max_total_time, how long libFuzzer gets to stop by itself before it
# is killed (a stuck target must not hang tools/check).
GRACE = 120


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", required=True, help="target name (fuzz_NAME.c)")
    ap.add_argument("--exe", required=True, help="the libFuzzer binary")
    ap.add_argument("--corpus", required=True, help="the committed seed corpus (read only)")
    ap.add_argument("--out", required=True, help="where crashing inputs and fuzz.log go")
    ap.add_argument("--dict", help="a libFuzzer dictionary, used when the file exists")
    ap.add_argument("--max-len", type=int, default=0, help="libFuzzer -max_len (0: its guess)")
    ap.add_argument("--seconds", type=int, help="fuzzing time (default OVL_FUZZ_SECONDS or 20)")
    return ap.parse_args()


def seconds_from(args):
    if args.seconds is not None:
        s = args.seconds
    else:
        text = os.environ.get("OVL_FUZZ_SECONDS", str(DEFAULT_SECONDS))
        try:
            s = int(text)
        except ValueError:
            sys.exit("run.py: OVL_FUZZ_SECONDS must be a whole number of seconds, not %r" % text)
    if s < 1:
        sys.exit("run.py: the fuzzing time must be at least 1 second")
    return s


def sanitizer_env():
    """Leaks count as findings; UBSan stops at its first report with a stack."""
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ":".join(
        filter(None, ["detect_leaks=1", "symbolize=1", env.get("ASAN_OPTIONS", "")]))
    env["UBSAN_OPTIONS"] = ":".join(
        filter(None, ["print_stacktrace=1", "halt_on_error=1", env.get("UBSAN_OPTIONS", "")]))
    return env


def last_int(pattern, text):
    found = re.findall(pattern, text)
    return int(found[-1]) if found else None


def main():
    args = parse_args()
    seconds = seconds_from(args)
    # libFuzzer runs in the temporary directory: make every path absolute.
    for name in ("exe", "corpus", "out", "dict"):
        if getattr(args, name):
            setattr(args, name, os.path.abspath(getattr(args, name)))
    os.makedirs(args.out, exist_ok=True)
    log_path = os.path.join(args.out, "fuzz.log")
    work = tempfile.mkdtemp(prefix="ovl-fuzz-%s-" % args.target)
    try:
        corpus = os.path.join(work, "corpus")
        if os.path.isdir(args.corpus):
            shutil.copytree(args.corpus, corpus)
        else:
            os.makedirs(corpus)
        seeds = len(os.listdir(corpus))
        cmd = [args.exe, corpus,
               "-max_total_time=%d" % seconds,
               "-print_final_stats=1",
               "-timeout=%d" % INPUT_TIMEOUT,
               "-artifact_prefix=%s/" % args.out]
        if args.max_len:
            cmd.append("-max_len=%d" % args.max_len)
        if args.dict and os.path.isfile(args.dict):
            cmd.append("-dict=%s" % args.dict)
        with open(log_path, "w", encoding="utf-8") as log:
            log.write("$ %s\n" % " ".join(cmd))
            log.flush()
            start = time.monotonic()
            try:
                proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=work,
                                      env=sanitizer_env(), timeout=seconds + GRACE, check=False)
                rc = proc.returncode
            except subprocess.TimeoutExpired:
                rc = None
            took = time.monotonic() - start
        grown = len(os.listdir(corpus))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    with open(log_path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    execs = last_int(r"stat::number_of_executed_units:\s*(\d+)", text)
    cov = last_int(r"#\d+\s+\w+\s+cov: (\d+)", text)
    artifacts = re.findall(r"Test unit written to (\S+)", text)
    ok = rc == 0 and not artifacts and execs is not None
    print("fuzz %s: %s executions in %.0f s, coverage %s, corpus %d -> %d inputs: %s" % (
        args.target, execs if execs is not None else "?", took,
        cov if cov is not None else "?", seeds, grown,
        "ok" if ok else "FAILED"))
    if ok:
        return 0
    print("--- last lines of %s ---" % log_path)
    print("\n".join(text.splitlines()[-80:]))
    print("---")
    if rc is None:
        print("libFuzzer did not stop within %d s of its time limit; killed" % GRACE)
    elif rc != 0:
        print("libFuzzer exited with status %d" % rc)
    for a in artifacts:
        print("crashing input kept at %s" % a)
        print("reproduce with: %s %s" % (args.exe, a))
    return 1


if __name__ == "__main__":
    sys.exit(main())
