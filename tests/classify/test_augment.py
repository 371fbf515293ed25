import torch

from craftlora.classify.augment import AugmentConfig, augment_batch, geometric

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def test_identity_parameters_keep_the_image():
    x = torch.rand(4, 3, 16, 16)
    cfg = AugmentConfig(crop_scale=(1, 1), crop_ratio=(1, 1), flip=False, rotation=0,
                        translate=0)
    y = geometric(x, cfg, torch.Generator().manual_seed(0))
    assert torch.allclose(x, y, atol=1e-5)


def test_disabled_is_normalisation_only():
    x = torch.randint(0, 255, (2, 3, 8, 8), dtype=torch.uint8)
    y = augment_batch(x, AugmentConfig(enabled=False), torch.Generator(), MEAN, STD)
    assert torch.allclose(y, (x.float() / 255 - 0.5) / 0.25)


def test_seeded_per_sample_and_in_range():
    x = torch.randint(0, 255, (1, 3, 16, 16), dtype=torch.uint8).repeat(6, 1, 1, 1)
    cfg = AugmentConfig()
    a = augment_batch(x, cfg, torch.Generator().manual_seed(1), MEAN, STD)
    b = augment_batch(x, cfg, torch.Generator().manual_seed(1), MEAN, STD)
    assert torch.equal(a, b)
    assert a.shape == x.shape
    # the same image gets different augmentations within a batch
    assert not torch.allclose(a[0], a[1])
    raw = a * 0.25 + 0.5
    assert raw.min() >= -1e-5 and raw.max() <= 1 + 1e-5
