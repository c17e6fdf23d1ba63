"""The small brain-model geometry several test modules build demo models in (fsaverage3, 10-TR windows)."""

SMALL = dict(
    feature_dims={"text": (2, 8), "audio": (2, 6), "video": (2, 4)},
    n_outputs=2 * 642,
    n_output_timesteps=10,
    hidden=96,
    depth=1,
    heads=2,
    low_rank_head=16,
    max_seq_len=64,
)
