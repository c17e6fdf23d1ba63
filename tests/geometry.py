"""The small brain-model geometries several test modules build demo models in (fsaverage3)."""

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

# for the demo extractors' features (their widths come from feature_dims(extractors)): 4-TR windows
WITH_DEMO_EXTRACTORS = dict(
    n_outputs=2 * 642,
    n_output_timesteps=4,
    hidden=96,
    depth=2,
    heads=2,
    low_rank_head=16,
    max_seq_len=16,
)

# for synthetic features, the release's 100-TR windows: predictions that the viz and results tests draw
FOR_PLOTS = dict(
    feature_dims={"text": (2, 8), "audio": (2, 8), "video": (2, 8)},
    n_outputs=2 * 642,
    hidden=96,
    depth=1,
    heads=2,
    low_rank_head=16,
)
