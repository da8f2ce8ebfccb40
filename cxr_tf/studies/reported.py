"""The figures each study reported, copied from the study (``../shared/seeds/``, mapped in SEEDS.md).

Shown beside cxr_tf's own tables, labelled "reported by the study"; never used to compute anything.
Where a study gives a figure only in prose, the prose figure is kept with its wording ("~0.95").
"""

from __future__ import annotations

# S1 (thesis, seeds/003): the class names as the thesis' tables print them. Its Table 1 heads the fifth
# AUC column "Pneumothorax" although the five classes (and Tables 3-10) are Pleural Effusion's.
S1_CLASSES = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")

# Table 1: model, enhancement layers, multilabel AUC, per-class AUC (5), accuracy.
S1_TABLE1 = (
    ("DenseNet121", True, 0.79, (0.697, 0.696, 0.697, 0.698, 0.696), 0.782),
    ("DenseNet121", False, 0.77, (0.679, 0.679, 0.679, 0.679, 0.679), 0.77),
    ("EfficientNetB4", True, 0.79, (0.70, 0.70, 0.70, 0.70, 0.70), 0.778),
    ("EfficientNetB4", False, 0.78, (0.69, 0.69, 0.69, 0.69, 0.69), 0.775),
)
# Table 2: model, enhancement layers, summed TP, FN, TN, FP.
S1_TABLE2 = (
    ("DenseNet121", True, 13474, 14551, 61925, 6450),
    ("DenseNet121", False, 11760, 16265, 62580, 5795),
    ("EfficientNetB4", True, 11476, 16549, 63618, 4757),
    ("EfficientNetB4", False, 11671, 16354, 63098, 5277),
)
# Tables 3/5/7/9: per class (TP, FP, FN, TN); Tables 4/6/8/10: per class and average TPR, TNR, F-score.
S1_CONFUSIONS = {
    ("DenseNet121", True): ((1510, 1333, 4495, 11942), (1318, 879, 1757, 15326), (147, 150, 3955, 15028),
                            (3694, 1868, 2481, 11237), (6803, 2201, 1865, 8411)),
    ("DenseNet121", False): ((444, 379, 5561, 12896), (1669, 1676, 1406, 14529), (225, 281, 3877, 14897),
                             (2964, 1354, 3211, 11751), (6435, 2085, 2233, 8527)),
    ("EfficientNetB4", True): ((1108, 933, 4897, 12342), (1214, 753, 1861, 15452), (72, 77, 4030, 15101),
                               (2255, 742, 3920, 12363), (6834, 2201, 1834, 8411)),
    ("EfficientNetB4", False): ((4649, 6914, 1356, 6361), (2424, 4454, 651, 11751), (3004, 7408, 1098, 7770),
                                (2384, 983, 3791, 12122), (6752, 2442, 1916, 8170)),
}
S1_RATES = {  # (TPR [5 + average], TNR [...], F-score [...])
    ("DenseNet121", True): ((0.251, 0.428, 0.035, 0.598, 0.784, 0.4192), (0.899, 0.945, 0.990, 0.857, 0.792, 0.8966),
                            (0.341, 0.5, 0.066, 0.629, 0.769, 0.46)),
    ("DenseNet121", False): ((0.073, 0.542, 0.054, 0.48, 0.742, 0.37), (0.971, 0.896, 0.981, 0.896, 0.803, 0.909),
                             (0.130, 0.519, 0.097, 0.564, 0.748, 0.411)),
    ("EfficientNetB4", True): ((0.184, 0.394, 0.017, 0.365, 0.788, 0.34), (0.929, 0.953, 0.994, 0.943, 0.792, 0.922),
                               (0.275, 0.481, 0.033, 0.491, 0.77, 0.41)),
    ("EfficientNetB4", False): ((0.774, 0.788, 0.732, 0.386, 0.778, 0.691),
                                (0.479, 0.725, 0.511, 0.924, 0.769, 0.681), (0.529, 0.487, 0.413, 0.499, 0.756, 0.536)),
}
# "Time for 34 epochs" on one Nvidia Titan Xp, minutes.
S1_MINUTES = {("DenseNet121", True): 824.10, ("DenseNet121", False): 738.37,
              ("EfficientNetB4", True): 1867.43, ("EfficientNetB4", False): 1810.42}

# S2 (seeds/000): "final metrics on the test data"; frozen or unfrozen and averaging not stated.
S2_TABLE = (("ResNet-152", 0.55, 0.42, 0.48), ("ViT", 0.58, 0.70, 0.58), ("YOLO", 0.22, 0.22, 0.11))

# S3 (seeds/001): prose only ("Experimental Results" and "Conclusion" slides).
S3_FINDINGS = (
    ("ResNet18", "1", "~0.95 (best: \"freeze the first block\")"),
    ("ResNet34", "-", "\"not much improvement\" over ResNet18, at double the parameters"),
    ("Handcrafted CNN", "-", "~0.90 (\"only 5% worse\"), 10x fewer parameters than ResNet18"),
)

# S4 (seeds/002): test accuracy; the from-scratch CNN and both transformers gave "around 0.33", which the
# authors attribute to a bug they did not find; the baseline and VGG16 have no test figure.
S4_ACCURACY = (("EfficientNet-B0 + weight decay", "0.88"), ("ResNet50", "~0.86"), ("EfficientNet-B0", "0.82"),
               ("MobileNetV2", "0.79"), ("From-scratch CNN", "~0.33 (a bug, say the authors)"),
               ("ViT", "~0.33 (a bug, say the authors)"), ("ViT-B/16 pre-trained", "~0.33 (a bug, say the authors)"),
               ("Baseline CNN", "not reported"),
               ("VGG16", "not reported (\"very slow and performed not so well\")"))

# S5 (seeds/004).
S5_ACCURACY = (("ResNet50", "0.8777"),)
