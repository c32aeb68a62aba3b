"""Pure statistics on tidy frames of runs (pandas, statsmodels, scipy, scikit-learn): factorial
ANOVA and effects, response surfaces, optimiser comparisons, cross-discriminator judgements and
chain tables. Nothing here reads MLflow or prints: `tunelab.compare` does that."""
