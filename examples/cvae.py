"""Convolutional variational autoencoder on binarized MNIST.

The TensorFlow tutorial "Convolutional Variational Autoencoder", on Keras 3.
The encoder runs two stride-2 convolutions (32 and 64 filters) into the mean
and log-variance of a 50-dimensional Gaussian; the decoder maps a sample z
through a dense layer and three transposed convolutions to the logits of
28x28 Bernoulli pixels. The loss is the negative ELBO, -log p(x|z) (sigmoid
cross-entropy of the logits) plus the KL divergence from the N(0, I) prior:
in closed form, or with --kl monte_carlo the tutorial's single-sample
estimate log q(z|x) - log p(z).

Digits are binarized as in the tutorial (threshold 0.5), or with
--binarize dynamic drawn afresh each epoch, the standard of published
likelihoods. Trains 100 epochs with Adam (learning rate 1e-4, batch 100),
printing the test-set ELBO and the time of each epoch and saving the digits
decoded from 16 fixed latent points after each (cvae/image_at_epoch_0001.png,
...), joined into cvae/cvae.gif at the end. Then saves cvae_mnist.h5, draws
the model diagrams and the pictures of the other examples, and prints the
test-set loss.

    python examples/cvae.py                          # train, save, plot, GIF
    python examples/cvae.py --binarize dynamic --samples 50
    python examples/cvae.py -w cvae_mnist.h5 --samples 50   # load, generate
    python examples/evaluate.py -w cvae_mnist.h5 --model conv --binarize static
"""

import os

from vae import cli


def _cvae_flags(parser):
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=1e-4,
        help="Adam's learning rate (default %(default)s)",
    )
    parser.add_argument(
        "--kl",
        choices=["analytic", "monte_carlo"],
        default="analytic",
        help="KL term in closed form, or the tutorial's single-sample "
        "estimate log q(z|x) - log p(z) (default %(default)s)",
    )


def main(argv=None):
    args = cli.parse_args(
        "cvae",
        __doc__,
        epochs=100,
        optimizer=None,
        argv=argv,
        extra=_cvae_flags,
        defaults={"batch_size": 100, "latent_dim": 50, "binarize": "static"},
    )

    import keras

    from vae import EpochSummary, GenerationFrames, build_conv_vae, workflow

    with workflow.one_line_errors(args):
        data = workflow.load_data(args, multiple_of=4)
        encoder, decoder, vae = build_conv_vae(
            input_shape=data.image_shape,
            latent_dim=args.latent_dim,
            loss="mse" if args.mse else "bce_logits",
            kl=args.kl,
            beta=args.beta,
            k=args.k,
            seed=args.seed,
        )
        workflow.describe(args, encoder, decoder, vae)
        vae.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
        if args.weights:
            workflow.load(args, vae)
        else:
            frames = GenerationFrames(
                os.path.join(args.out, "cvae"), n=16, seed=args.seed, gif="cvae.gif"
            )
            workflow.fit_and_save(args, vae, data, callbacks=[EpochSummary(), frames])
            print(f"saved {len(frames.frames)} frames and {frames.gif_path}")
        workflow.plot(args, encoder, decoder, vae, data)
        return workflow.evaluate(args, vae, data)


if __name__ == "__main__":
    main()
