"""Input statistics of ImageNet-pretrained backbones (torchvision, timm), per RGB channel on pixels scaled to 0..1.

Kept free of PyTorch so that the ONNX predict paths can import them. EfficientNet-Lite's own statistics live
beside its weights in `core.pretrained`.
"""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
