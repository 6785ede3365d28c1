"""Variational autoencoder on MNIST, with convolutions.

The classic Keras example `variational_autoencoder_deconv.py`, on Keras 3.
The encoder runs two stride-2 convolutions (32 and 64 filters), a 16-unit
dense layer and the Gaussian heads of a 2-D latent space; the decoder mirrors
it with transposed convolutions back to 28x28 pixel probabilities. The loss
is the reconstruction term (binary cross-entropy, or mean squared error with
--mse) plus the KL divergence from the N(0, I) prior.

Trains 30 epochs with RMSprop, saves vae_cnn_mnist.h5, draws the model
diagrams, the test digits' latent means (vae_cnn/vae_mean.png), the digits
decoded over the latent plane (vae_cnn/digits_over_latent.png),
reconstructions and an interpolation, and prints the test-set loss. Other
data: --dataset fashion_mnist, or --data with a folder of images (grey or
RGB; height and width divisible by 4) or an .npz.

    python examples/vae_cnn.py                  # train, save, plot
    python examples/vae_cnn.py --mse            # mean squared error loss
    python examples/vae_cnn.py -w vae_cnn_mnist.h5   # load, plot
    python examples/vae_cnn.py --samples 50     # also generate 50 digits from the prior
    python examples/vae_cnn.py --dataset fashion_mnist
"""

from vae import cli


def main(argv=None):
    args = cli.parse_args("vae_cnn", __doc__, epochs=30, optimizer="rmsprop", argv=argv)

    from vae import build_cnn_vae, workflow

    with workflow.one_line_errors(args):
        data = workflow.load_data(args, multiple_of=4)
        encoder, decoder, vae = build_cnn_vae(
            input_shape=data.image_shape,
            filters=16,
            kernel_size=3,
            latent_dim=args.latent_dim,
            loss=args.loss,
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
        return workflow.evaluate(args, vae, data)


if __name__ == "__main__":
    main()
