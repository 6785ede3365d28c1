"""Runs an example script as a user runs it, and records what its model computes at the end.

`tests/test_examples.py` and `tests/test_backends.py` run it in a fresh process:

    python tests/script_outputs.py OUT examples/vae_mlp.py [the script's flags ...]

The script runs unchanged in this process (`runpy`, as `python SCRIPT FLAGS`
runs it, `--backend` included), with one addition: when it evaluates its model
on the test set (`vae.workflow.evaluate`, after training and saving, or after
loading `-w`), OUT receives what that model computes without sampling, on
fixed inputs: `z_mean` and `z_log_var` of its first 32 test digits (`x`, with
their labels for a conditional model) and the decoding of 32 fixed latent
points (`z`, seeded normals), with the backend's name. So a run that trained
and saved a file, and a run that loaded it, can be compared number for number:
the loss they print is an average over one random z per digit, these are not.
"""

import runpy
import sys

import numpy as np

from vae import workflow

N = 32


def _recording(out, evaluate):
    def recording(args, vae, data):
        import keras

        # The test images as arrays (a streamed folder's: the pictured ones).
        parts = data.test if isinstance(data.test, tuple) else (data.x_test,)
        inputs = [part[:N] for part in parts]  # the digits, and a conditional model's labels
        latent_dim = vae.decoder.inputs[0].shape[-1]
        z = 2 * np.random.default_rng(0).standard_normal((N, latent_dim)).astype("float32")
        z_mean, z_log_var, _ = vae.encoder(inputs if len(inputs) > 1 else inputs[0], training=False)
        decoded = vae.decoder([z, *inputs[1:]] if len(inputs) > 1 else z, training=False)
        np.savez(
            out,
            backend=keras.backend.backend(),
            x=inputs[0],
            z=z,
            **{
                name: keras.ops.convert_to_numpy(value)
                for name, value in [
                    ("z_mean", z_mean),
                    ("z_log_var", z_log_var),
                    ("decoded", decoded),
                ]
            },
        )
        return evaluate(args, vae, data)

    return recording


def main(out, script, *flags):
    workflow.evaluate = _recording(out, workflow.evaluate)
    sys.argv = [script, *flags]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(*sys.argv[1:])
