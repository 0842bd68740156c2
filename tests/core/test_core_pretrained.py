import pytest
import torch
from skimage import data as skimage_data

from core.normalisation import IMAGENET_MEAN, IMAGENET_STD
from core.pretrained import (EFFICIENTNET_LITE_INPUT_SIZE, EFFICIENTNET_LITE_LEVELS, EFFICIENTNET_LITE_MEAN,
                             EFFICIENTNET_LITE_STD, imagenet_efficientnet_lite, imagenet_mobilenet_v2,
                             resolve_mobilenet_v2_weights, shipped_mobilenet_v2_file)


def test_mobilenet_v2_loads_offline_from_the_shipped_file():
    cached = resolve_mobilenet_v2_weights()
    assert cached.read_bytes() == shipped_mobilenet_v2_file().read_bytes()
    model = imagenet_mobilenet_v2().eval()
    # A real photo: scikit-image's coffee cup must be recognised as a cup or espresso (ImageNet 967, 968).
    image = torch.from_numpy(skimage_data.coffee()).permute(2, 0, 1).float() / 255
    image = torch.nn.functional.interpolate(image[None], size=(224, 224), mode="bilinear", antialias=True)
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    with torch.inference_mode():
        top5 = model((image - mean) / std).topk(5).indices[0].tolist()
    assert {967, 968} & set(top5), top5


@pytest.mark.parametrize("level", EFFICIENTNET_LITE_LEVELS)
def test_efficientnet_lite_loads_offline_and_knows_real_photos(level):
    """Every shipped tensor lands on a timm parameter (strict load), and the network is ImageNet's: scikit-image's
    coffee cup is an espresso (967) or cup (968), its cat an Egyptian / tabby / tiger cat (285, 281, 282)."""
    model = imagenet_efficientnet_lite(level).eval()
    size = EFFICIENTNET_LITE_INPUT_SIZE[level]
    mean = torch.tensor(EFFICIENTNET_LITE_MEAN)[:, None, None]
    std = torch.tensor(EFFICIENTNET_LITE_STD)[:, None, None]
    for photo, classes in ((skimage_data.coffee(), {967, 968}), (skimage_data.chelsea(), {281, 282, 285})):
        image = torch.from_numpy(photo).permute(2, 0, 1).float() / 255
        image = torch.nn.functional.interpolate(image[None], size=(size, size), mode="bilinear", antialias=True)
        with torch.inference_mode():
            probabilities = model((image - mean) / std).softmax(dim=1)[0]
        assert probabilities.argmax().item() in classes
        assert probabilities[sorted(classes)].sum() > 0.6


def test_efficientnet_lite_level_must_ship():
    with pytest.raises(ValueError, match="does not ship"):
        imagenet_efficientnet_lite(4)
