"""How good is a trained VAE: test-set ELBO and importance-sampled log-likelihood.

Loads weights saved by vae_mlp.py, vae_cnn.py or cvae.py and prints, in nats
per digit with the standard error over digits, the test-set ELBO and the
negative log-likelihood -log p(x) estimated by importance sampling with k
draws from the encoder per digit (Burda et al. 2015): the log-mean-exp of
log p(x|z) + log p(z) - log q(z|x). The NLL lies below -ELBO and falls
towards the true value as k grows; published numbers use k = 5000 on
binarized digits.

The test digits are binarized by one fixed Bernoulli draw by default (the
one cvae.py --binarize dynamic validates on). A Bernoulli likelihood of grey
levels is no probability, so with --binarize none only the ELBO is printed
for cross-entropy models.

    python examples/evaluate.py -w cvae_mnist.h5 --model conv --k 1000
    python examples/evaluate.py -w benchmarks/results/burda_vae_k1.weights.h5 --model burda
    python examples/evaluate.py -w vae_mlp_mnist.h5 --model mlp --binarize static
    python examples/evaluate.py -w vae_cnn_mnist.h5 --model cnn --mse --binarize none
"""

from vae import cli


def main(argv=None):
    args = cli.parse_evaluation_args(__doc__, argv)

    from vae import build_cnn_vae, build_conv_vae, build_mlp_vae, workflow
    from vae.models import BURDA_MLP

    if args.model == "mlp":
        models = build_mlp_vae(latent_dim=args.latent_dim, loss=args.loss)
    elif args.model == "burda":
        models = build_mlp_vae(**{**BURDA_MLP, "latent_dim": args.latent_dim})
    elif args.model == "cnn":
        models = build_cnn_vae(latent_dim=args.latent_dim, loss=args.loss)
    else:
        models = build_conv_vae(latent_dim=args.latent_dim, loss=args.loss)
    return workflow.load_then_evaluate(args, models)


if __name__ == "__main__":
    main()
