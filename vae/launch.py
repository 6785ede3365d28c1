"""Starts N processes of one script on this machine, joined the engines' own way.

    python -m vae.launch -n 2 examples/vae_mlp.py --distribute --epochs 5
    python -m vae.launch -n 2 examples/vae_mlp.py --backend jax --distribute

Each process gets what its engine reads to find the others, on free ports
of 127.0.0.1: on TensorFlow a `TF_CONFIG` naming every worker and its own
index (`tf.distribute.MultiWorkerMirroredStrategy` reads it); on JAX the
flags `--coordinator 127.0.0.1:PORT --num-processes N --process-id I`, the
arguments of `keras.distribution.initialize`. Process 0 is the chief: it
writes the weights and pictures. The launcher relays every line of their
output prefixed with `[worker I]`, and exits with the status of the first
that fails. A worker that dies takes the others down: its one line names
it, and the rest are stopped, so nothing waits on a peer that is gone. On
several hosts, start the processes yourself with the same settings.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

# How long the others may take to stop after one failed, before SIGKILL.
GRACE_SECONDS = 10


def free_ports(count):
    """`count` distinct ports of 127.0.0.1 that nothing listens on now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def backend_of(arguments):
    """The Keras backend the script will use: its `--backend`, else `KERAS_BACKEND`."""
    for i, argument in enumerate(arguments):
        if argument == "--backend" and i + 1 < len(arguments):
            return arguments[i + 1]
        if argument.startswith("--backend="):
            return argument.split("=", 1)[1]
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def worker_commands(script, arguments, processes, backend, ports):
    """`(argv, environment)` of each worker."""
    commands = []
    for index in range(processes):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        argv = [sys.executable, script, *arguments]
        if backend == "jax":
            argv += [
                "--coordinator",
                f"127.0.0.1:{ports[0]}",
                "--num-processes",
                str(processes),
                "--process-id",
                str(index),
            ]
        else:
            env["TF_CONFIG"] = json.dumps(
                {
                    "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
                    "task": {"type": "worker", "index": index},
                }
            )
        commands.append((argv, env))
    return commands


def _relay(index, stream, lock):
    for line in stream:
        with lock:
            sys.stdout.write(f"[worker {index}] {line}")
            sys.stdout.flush()


def _describe(index, status):
    if status < 0:
        return f"worker {index} was killed by {signal.Signals(-status).name}"
    return f"worker {index} exited with status {status}"


def launch(script, arguments, processes):
    """Runs the workers to the end; returns the first non-zero status, else 0."""
    backend = backend_of(arguments)
    ports = free_ports(processes)
    lock = threading.Lock()
    workers, relays = [], []
    for index, (argv, env) in enumerate(
        worker_commands(script, arguments, processes, backend, ports)
    ):
        worker = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        relay = threading.Thread(target=_relay, args=(index, worker.stdout, lock), daemon=True)
        relay.start()
        workers.append(worker)
        relays.append(relay)
    print(
        f"launch: {processes} {backend} workers on 127.0.0.1, "
        + ", ".join(f"worker {i} pid {w.pid}" for i, w in enumerate(workers)),
        flush=True,
    )
    failed = None
    try:
        while failed is None and any(w.poll() is None for w in workers):
            for index, worker in enumerate(workers):
                if worker.poll() not in (None, 0):
                    failed = index
                    break
            time.sleep(0.2)
    except KeyboardInterrupt:
        failed = "interrupted"
    if failed is None:
        failed = next((i for i, w in enumerate(workers) if w.returncode), None)
    if failed is not None:
        _stop(workers)
    for relay in relays:
        relay.join(timeout=5)
    if failed is None:
        return 0
    if failed == "interrupted":
        print("launch: interrupted; the workers were stopped", file=sys.stderr)
        return 130
    status = workers[failed].returncode
    print(f"launch: {_describe(failed, status)}; stopped the other workers", file=sys.stderr)
    return status if status > 0 else 128 - status


def _stop(workers):
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    deadline = time.monotonic() + GRACE_SECONDS
    for worker in workers:
        try:
            worker.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m vae.launch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-n", "--processes", type=int, default=2, help="default %(default)s")
    parser.add_argument("script", help="the example script, e.g. examples/vae_mlp.py")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="the script's flags")
    args = parser.parse_args(argv)
    if args.processes < 1:
        parser.error(f"-n {args.processes}: give at least 1 process")
    if not os.path.isfile(args.script):
        parser.error(f"{args.script}: no such script")
    return launch(args.script, args.arguments, args.processes)


if __name__ == "__main__":
    sys.exit(main())
