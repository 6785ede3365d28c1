"""Conditional variational autoencoder on MNIST: generate the digit you ask for.

The MLP VAE of vae_mlp.py, with the digit's class given to the encoder and
to the decoder as a one-hot label (Sohn et al. 2015): q(z | x, y) and
p(x | z, y). The label carries which digit it is, so z is left with how it
is written (slant, stroke width); decoding one z with each label writes
every digit in one hand. The loss is the negative ELBO of x given y.

Trains 50 epochs with Adam, saves vae_conditional_mnist.h5, draws the model
diagrams and the ten classes decoded from the same N draws of z
(vae_conditional/classes.png, a row per class), with --digit D also N
samples of that digit (vae_conditional/digit_D.png), and prints the
test-set loss. Data needs labels: MNIST, --dataset fashion_mnist, or --data
with a folder of images in one subfolder per class.

    python examples/vae_conditional.py --digit 7             # train, save, draw sevens
    python examples/vae_conditional.py -w vae_conditional_mnist.h5 --digit 3 --samples 50
"""

import os

from vae import cli


def _conditional_flags(parser):
    parser.add_argument(
        "--digit",
        type=int,
        metavar="D",
        help="also generate --samples draws of class D (0-9 for digits) into "
        "<out>/vae_conditional/digit_D.png",
    )
    parser.add_argument(
        "--samples",
        type=cli.positive(1),
        default=10,
        metavar="N",
        help="draws of z: the columns of the classes grid, and the samples "
        "of --digit (default %(default)s)",
    )


def main(argv=None):
    args = cli.parse_args(
        "vae_conditional",
        __doc__,
        epochs=50,
        optimizer="adam",
        argv=argv,
        extra=_conditional_flags,
        iwae=False,
    )

    from vae import workflow
    from vae.conditional import build_conditional_vae, plot_class_grid, plot_class_samples
    from vae.data import DataError

    with workflow.one_line_errors(args):
        data = workflow.load_data(args, flatten=True, labels=True)
        classes = len(data.class_names)
        if args.digit is not None and not 0 <= args.digit < classes:
            raise DataError(
                f"--digit {args.digit}: the data has classes 0 to {classes - 1}; choose one of them"
            )
        encoder, decoder, vae = build_conditional_vae(
            original_dim=data.x_test.shape[1],
            num_classes=classes,
            intermediate_dim=512,
            latent_dim=args.latent_dim,
            loss=args.loss,
            beta=args.beta,
            seed=args.seed,
        )
        workflow.describe(args, encoder, decoder, vae)
        vae.compile(optimizer=workflow.optimizer(args))
        if args.weights:
            workflow.load(args, vae)
        else:
            workflow.fit_and_save(args, vae, data)

        pictures = os.path.join(args.out, args.name)
        os.makedirs(pictures, exist_ok=True)
        grid = os.path.join(pictures, "classes.png")
        plot_class_grid(
            decoder,
            grid,
            classes,
            n=args.samples,
            seed=args.seed,
            class_names=data.class_names,
            image_shape=data.image_shape,
            show=args.show,
        )
        print(
            f"saved the {classes} classes, each from the same {args.samples} draws of z, to {grid}"
        )
        if args.digit is not None:
            samples = os.path.join(pictures, f"digit_{args.digit}.png")
            plot_class_samples(
                decoder,
                args.digit,
                args.samples,
                samples,
                seed=args.seed,
                class_names=data.class_names,
                image_shape=data.image_shape,
                show=args.show,
            )
            print(
                f"saved {args.samples} samples of class {data.class_names[args.digit]} to {samples}"
            )
        return workflow.evaluate(args, vae, data)


if __name__ == "__main__":
    main()
