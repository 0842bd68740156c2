import torch
from skimage import data as skimage_data

from core.pretrained import imagenet_mobilenet_v2, resolve_mobilenet_v2_weights, shipped_mobilenet_v2_file


def test_mobilenet_v2_loads_offline_from_the_shipped_file():
    cached = resolve_mobilenet_v2_weights()
    assert cached.read_bytes() == shipped_mobilenet_v2_file().read_bytes()
    model = imagenet_mobilenet_v2().eval()
    # A real photo: scikit-image's coffee cup must be recognised as a cup or espresso (ImageNet 967, 968).
    image = torch.from_numpy(skimage_data.coffee()).permute(2, 0, 1).float() / 255
    image = torch.nn.functional.interpolate(image[None], size=(224, 224), mode="bilinear", antialias=True)
    mean, std = torch.tensor([0.485, 0.456, 0.406])[:, None, None], torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    with torch.inference_mode():
        top5 = model((image - mean) / std).topk(5).indices[0].tolist()
    assert {967, 968} & set(top5), top5
