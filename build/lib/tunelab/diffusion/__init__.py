"""Diffusion: the noise schedule, a compact U-Net denoiser, and the (guided) DDIM sampler."""
