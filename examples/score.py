"""Score your own images under a trained VAE: which of them do not belong?

Loads a model saved by vae_mlp.py, vae_cnn.py, cvae.py or benchmarks/ood.py
(the weights file records how it was built and how its images were
binarized), and gives every image of --data one value per score, higher
meaning more unusual:

  nll                   -log p(x), importance sampled with --k draws
  negative_elbo         -ELBO, the model's loss
  reconstruction_error  the reconstruction term at the encoder's mean
  input_complexity      -log2 p(x) minus the image's PNG length, bits per
                        dimension (Serra et al. 2020)
  likelihood_ratio      the NLL minus a background model's (--background,
                        trained with --perturb; Ren et al. 2019)
  likelihood_regret     how much the NLL falls when a copy of the encoder is
                        fine-tuned on the image (--regret; Xiao et al. 2020)

It writes DIR/scores.csv, one row per image in input order with its scores
and latent code (z_mean_0, ...). With --reference, in-distribution images
the model did not train on, it also flags the images above the reference's
(1 - --fpr) quantile (the anomalous column), prints and writes each score's
AUROC, AUPRC and FPR at 95% TPR (ood.json), and draws histograms.png,
roc.png and most_unusual.png.

    python examples/score.py -w vae_mlp_mnist.h5 --data my_digits/ --out scored
    python examples/score.py -w benchmarks/results/ood_fashion_mnist.weights.h5 \\
        --data ../shared/data/mnist --reference /usr/share/datasets/fashion-mnist \\
        --background benchmarks/results/ood_fashion_mnist_background.weights.h5 --out ood
    python examples/score.py -w old_weights.h5 --model mlp --latent-dim 2 --binarize static \\
        --data my_digits/ --out scored
"""

from vae import cli


def main(argv=None):
    args = cli.parse_score_args(__doc__, argv)

    from vae import scoring, workflow

    with workflow.one_line_errors(args):
        return scoring.run(args)


if __name__ == "__main__":
    main()
