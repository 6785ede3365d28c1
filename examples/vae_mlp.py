"""Variational autoencoder on MNIST, with multilayer perceptrons.

The classic Keras example `variational_autoencoder.py`, on Keras 3. The
encoder maps a digit (784 pixels) through 512 ReLU units to the mean and
log-variance of a 2-D Gaussian; a sample z of it is decoded back through 512
ReLU units to 784 pixel probabilities. The loss is the reconstruction term
(binary cross-entropy, or mean squared error with --mse) plus the KL
divergence from the N(0, I) prior.

Trains 50 epochs with Adam, saves vae_mlp_mnist.h5, draws the model diagrams,
the test digits' latent means (vae_mlp/vae_mean.png), the digits decoded
over the latent plane (vae_mlp/digits_over_latent.png), reconstructions and
an interpolation, and prints the test-set loss. Other data: --dataset
fashion_mnist, or --data with a folder of images or an .npz.

    python examples/vae_mlp.py                  # train, save, plot
    python examples/vae_mlp.py --mse            # mean squared error loss
    python examples/vae_mlp.py -w vae_mlp_mnist.h5   # load, plot
    python examples/vae_mlp.py --samples 50     # also generate 50 digits from the prior
    python examples/vae_mlp.py --beta 4 --kl-warmup 5   # a beta-VAE, KL weight warmed up
    python examples/vae_mlp.py --data my_pictures/ --image-size 32 32
"""

from vae import cli


def main(argv=None):
    args = cli.parse_args("vae_mlp", __doc__, epochs=50, optimizer="adam", argv=argv)

    from vae import build_mlp_vae, workflow

    with workflow.one_line_errors(args):
        data = workflow.load_data(args, flatten=True)
        encoder, decoder, vae = build_mlp_vae(
            original_dim=data.x_test.shape[1],
            intermediate_dim=512,
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
