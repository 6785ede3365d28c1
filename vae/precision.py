"""Mixed precision: layers compute in 16 bits, weights, loss and sampling stay float32.

Under a mixed policy every layer built afterwards keeps its weights in
float32 and computes in float16 or bfloat16, halving the memory traffic of
activations and using the 16-bit units of GPUs and TPUs. What needs the
range or the digits of float32 stays there: the `Sampling` layer (an
exponential of the log-variance), the loss terms (`VAE.call` casts to
float32 before computing them), and the sigmoid output layers of the
decoders (a probability near 1 rounds to exactly 1 in 16 bits, where the
cross-entropy is clipped and stops teaching).
"""

import keras

POLICIES = ("mixed_float16", "mixed_bfloat16")


def default_policy():
    """`"mixed_float16"` when a GPU is present, else `"mixed_bfloat16"`.

    Every CUDA GPU with 16-bit matrix units (Volta and later) has them for
    float16; only Ampere and later also for bfloat16. float16's narrow range
    needs the loss scaled, which `compile` does by itself under this policy
    (`keras.optimizers.LossScaleOptimizer`). TPUs, and CPUs that have any
    16-bit arithmetic, have it for bfloat16, whose range is float32's, so no
    loss scaling.
    """
    return "mixed_float16" if _has_gpu() else "mixed_bfloat16"


def _has_gpu():
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    if backend in ("tensorflow", "jax"):
        return any(device.startswith("gpu") for device in keras.distribution.list_devices())
    return False


def mixed_precision(policy=None):
    """Makes every layer built afterwards compute in 16 bits, with float32 weights.

    Args:
        policy: `"mixed_float16"`, `"mixed_bfloat16"`, or `None` for
            `default_policy()`.

    Returns:
        The policy's name.

    Example:

    >>> mixed_precision("mixed_bfloat16")
    >>> encoder, decoder, vae = build_mlp_vae()   # bfloat16 layers, float32 weights
    """
    policy = policy or default_policy()
    if policy not in POLICIES:
        raise ValueError(
            f"unknown mixed-precision policy {policy!r}: use one of {', '.join(POLICIES)}"
        )
    keras.mixed_precision.set_global_policy(policy)
    return policy
