"""Variational autoencoder on photographs: a convolutional VAE sized for the image.

A network after PyTorch-VAE's VanillaVAE, as deep as the image asks:
stride-2 convolutions with batch normalization and leaky ReLUs until the
map is about 4x4 (4 stages at 64x64), the filters doubling from 32 to 256,
and a latent space of one dimension per 96 pixel values (128 at 64x64x3).
Its likelihood is the discretized logistic of 8-bit pixels with a learned
scale, so the held-out loss is reported in bits per dimension.

A folder given with --data is read a batch at a time while training, by
threads beside the model (--workers): memory stays bounded whatever its
size. The script says how many images it found and how many it trains on
and holds out (--validation-split, drawn with --seed); a corrupt or
truncated image stops the run with its name, or is passed over and counted
with --skip-bad-images. Weights go to vae_images_<folder>.h5, and the
pictures (reconstructions, the latent means, samples with --samples) to
vae_images/.

    python scripts/make_photo_crops.py crops --count 10000 --size 64
    python examples/vae_images.py --data crops --epochs 10 --samples 50
    python examples/vae_images.py --data crops -w vae_images_crops.h5
    python examples/vae_images.py --data ~/photos --image-size 128 128
"""

import math

from vae import cli


def _flags(parser):
    parser.add_argument(
        "--latent-dim",
        type=cli.positive(1),
        help="dimension of z (default: one per 96 pixel values, 16 to 512; 128 at 64x64x3)",
    )
    parser.add_argument(
        "--loss",
        choices=["logistic", "mse", "bce"],
        default="logistic",
        help="the pixels' likelihood: the discretized logistic of 8-bit pixels with a "
        "learned scale (default), squared error, or binary cross-entropy",
    )


def main(argv=None):
    args = cli.parse_args(
        "vae_images",
        __doc__,
        epochs=20,
        optimizer="adam",
        argv=argv,
        defaults={"batch_size": cli.BatchForImages(64, 64), "latent_dim": None},
        extra=_flags,
        stream_folders=True,
    )

    from vae import build_image_vae, workflow
    from vae.models import image_stages

    with workflow.one_line_errors(args):
        data = workflow.load_data(args, multiple_of=lambda size: 2 ** image_stages(size))
        encoder, decoder, vae = build_image_vae(
            input_shape=data.image_shape,
            latent_dim=args.latent_dim,
            likelihood=args.loss,
            beta=args.beta,
            k=args.k,
            seed=args.seed,
        )
        workflow.describe(args, encoder, decoder, vae)
        vae.compile(optimizer=workflow.optimizer(args))
        if args.weights:
            workflow.load(args, vae)
        else:
            workflow.fit_and_save(args, vae, data)
        workflow.plot(args, encoder, decoder, vae, data)
        metrics = workflow.evaluate(args, vae, data)
        workflow.report_skipped(args, data)
        if args.loss == "logistic":
            bits = metrics["negative_elbo"] / (math.prod(data.image_shape) * math.log(2))
            print(
                f"held-out bits per dimension: {bits:.3f} (the negative ELBO's, a bound "
                "on the discretized logistic's)"
            )
            metrics["bits_per_dimension"] = bits
        return metrics


if __name__ == "__main__":
    main()
