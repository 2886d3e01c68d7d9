"""Structural compression across experts, blocks and module pairs (Sub-MoE, FuseGPT, MoDeGPT, TDN)."""
