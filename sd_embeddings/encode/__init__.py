"""Placements + CLIP text encoders -> conditioning (SD1, SD2, SDXL), and loading a local checkpoint's encoders."""
