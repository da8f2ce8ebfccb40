"""The five studies' experiment grids: which runs (arms) each study compares, from which recipes.

An arm is one ``pipelines/*.toml`` recipe plus the overrides that make it the study's cell (S1's
"enhancement layers" off, S3's K frozen blocks, ...). ``ARMS`` is the one table of every arm of every
study, so a renamed recipe or zoo network is one edit here. ``Phantoms`` says how ``--phantoms``
draws a study's data in its source's layout and how far its grid is reduced to run on a laptop CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxr_tf.registry import Registry

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


@dataclass(frozen=True)
class Arm:
    """One run of a study's grid.

    Attributes:
        name: directory of the run under the study's ``--out`` and its row in the tables.
        recipe: stem of the ``pipelines/`` recipe it starts from.
        overrides: recipe keys that make this arm (FitConfig names and values).
        label: the arm as the study names it in its tables (model and setting).
    """

    name: str
    recipe: str
    overrides: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    @property
    def recipe_path(self) -> Path:
        return PIPELINES / f"{self.recipe}.toml"


@dataclass(frozen=True)
class Phantoms:
    """Phantom data in a study's layout and the reduced grid run on it (``--phantoms``).

    Attributes:
        style: ``python -m cxr_tf.synth --style``.
        synth: further synth flags (findings, prevalences, difficulty, label noise).
        build: build_records flags after ``--images``/``--labels`` (``{d}`` is the phantom directory).
        n: images drawn. size: their side and the records' side, pixels.
        reduced: FitConfig overrides of every arm (small images, few epochs, no ImageNet weights).
        two_phase: further overrides of the arms that train a frozen backbone first (``freeze = "backbone"``
            with fine-tuning epochs).
        arms: arm name -> its own further overrides, last (the few networks whose CPU step costs the
            10-minute budget of a whole study train fewer epochs).
    """

    style: str
    synth: tuple[str, ...]
    build: tuple[str, ...]
    n: int
    size: int
    reduced: dict[str, Any]
    two_phase: dict[str, Any] = field(default_factory=dict)
    arms: dict[str, dict[str, Any]] = field(default_factory=dict)

    def reduce(self, arm: str, values: dict[str, Any]) -> dict[str, Any]:
        """Recipe ``values`` of ``arm`` with the reduced grid's keys, then ``two_phase``'s (a two-phase arm),
        then the arm's own."""
        two_phase = values.get("freeze") == "backbone" and values.get("fine_tune_epochs", 0) > 0
        return {**values, **self.reduced, **(self.two_phase if two_phase else {}), **self.arms.get(arm, {})}


@dataclass(frozen=True)
class Study:
    """A study: its arms, how its test split is scored, and its phantom stand-in.

    Attributes:
        name: ``s1`` .. ``s5``. title: the study as ``../shared/SEEDS.md`` names it.
        arms: the grid, in the order of the study's tables.
        threshold: evaluate's ``--threshold`` of multilabel studies (the studies threshold sigmoid
            outputs at 0.5; ignored for single-label ones, scored by argmax).
        noise_sweep: evaluate's ``--noise-sweep`` specs (S2's noise at test time).
    """

    name: str
    title: str
    arms: tuple[Arm, ...]
    phantoms: Phantoms
    threshold: str = "0.5"
    noise_sweep: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = set(self.phantoms.arms) - {arm.name for arm in self.arms}
        if unknown:  # a misspelt arm would silently run the unreduced grid's epochs
            raise ValueError(f"{self.name}: phantom overrides for unknown arm(s) {', '.join(sorted(unknown))}")

    def arm(self, name: str) -> Arm:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(name)


S1_CLASSES = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
FROZEN_BLOCKS = range(5)  # S3: "how many ResNet blocks we will freeze", 0-4

# Every arm of every study: (study, arm name, recipe, overrides, label as the study's tables name it).
ARMS: tuple[tuple[str, str, str, dict[str, Any], str], ...] = (
    # S1 Table 1: model x "Enhancement layers" True/False.
    ("s1", "densenet121_enhance", "s1_chexpert_densenet121", {"enhance": True}, "DenseNet121"),
    ("s1", "densenet121_plain", "s1_chexpert_densenet121", {"enhance": False, "channels": "gray3"}, "DenseNet121"),
    ("s1", "efficientnetb4_enhance", "s1_chexpert_efficientnetb4", {"enhance": True}, "EfficientNetB4"),
    ("s1", "efficientnetb4_plain", "s1_chexpert_efficientnetb4", {"enhance": False, "channels": "gray3"},
     "EfficientNetB4"),
    # S2: ResNet-152 and ViT, backbone fully frozen vs fully unfrozen (YOLO is out of scope).
    ("s2", "resnet152_frozen", "s2_nih_resnet152_frozen", {}, "ResNet-152 frozen"),
    ("s2", "resnet152_unfrozen", "s2_nih_resnet152_unfrozen", {}, "ResNet-152 unfrozen"),
    ("s2", "vit_frozen", "s2_nih_vit_frozen", {}, "ViT frozen"),
    ("s2", "vit_unfrozen", "s2_nih_vit_unfrozen", {}, "ViT unfrozen"),
    # S3: the handcrafted CNN, then ResNet18/34 with 0-4 residual blocks frozen.
    ("s3", "cnn5", "s3_covid_cnn5", {}, "Handcrafted CNN"),
    *(("s3", f"resnet{depth}_frozen{k}", f"s3_covid_resnet{depth}", {"freeze_stages": k}, f"ResNet{depth}")
      for depth in (18, 34) for k in FROZEN_BLOCKS),
    # S4: every model it compares; the pre-trained CNNs frozen first, then fine-tuned.
    ("s4", "baseline_cnn", "s4_kermany3_baseline_cnn", {}, "Baseline CNN"),
    ("s4", "scratch_cnn", "s4_kermany3_scratch_cnn", {}, "From-scratch CNN"),
    ("s4", "resnet50", "s4_kermany3_resnet50", {}, "ResNet50"),
    ("s4", "efficientnetb0", "s4_kermany3_efficientnetb0", {}, "EfficientNet-B0"),
    ("s4", "efficientnetb0_adamw", "s4_kermany3_efficientnetb0_adamw", {}, "EfficientNet-B0 + weight decay"),
    ("s4", "mobilenetv2", "s4_kermany3_mobilenetv2", {}, "MobileNetV2"),
    ("s4", "vgg16", "s4_kermany3_vgg16", {}, "VGG16"),
    ("s4", "vit", "s4_kermany3_vit", {}, "ViT"),
    ("s4", "vit_pretrained", "s4_kermany3_vit_pretrained", {}, "ViT-B/16 pre-trained"),
    # S5: ResNet50, frozen then unfrozen.
    ("s5", "resnet50", "s5_kermany2_resnet50", {}, "ResNet50"),
)

# The reduced grid of --phantoms: CPU-sized images and epochs, random initialisation (ImageNet weights
# cannot be downloaded everywhere), a fixed learning-rate schedule length. Patience stays the study's.
# 32 px and batch 16 rather than 64 px and batch 32: the same CPU time buys four times the images and
# twice the steps, and randomly initialised networks need steps (batch-norm statistics and weights alike):
# at 64 px, batch 32 and 2-3 epochs every large network stayed at chance (S1 test AUC 0.49-0.54, S4's
# ImageNet architectures at one class), at 32 px and batch 16 S1's DenseNet121 reached validation AUC 0.91
# in four epochs. The findings stay visible at 32 px at difficulty 0.3 (lesion contrast 1.24x the default).
_SMALL = {"weights": "none", "image_size": 32, "batch_size": 16, "steps_per_epoch": None, "validation_steps": None}
# A frozen random backbone teaches a head little (its batch norms run on initial statistics, in inference
# mode), so the frozen phase is one epoch and the fine-tuning phase, the real training here, runs four at
# the frozen phase's rate: S5's ResNet50 went from validation AUC 0.53 after the first fine-tuning epoch
# to 0.80 after the third.
_TWO_PHASE = {"epochs": 1, "fine_tune_epochs": 4, "fine_tune_lr": 1e-3}

PHANTOMS: dict[str, Phantoms] = {
    "s1": Phantoms(
        "chexpert",
        ("--findings", "Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion",
         "--prevalence", "Atelectasis=0.25", "Cardiomegaly=0.25", "Consolidation=0.2", "Edema=0.2", "Effusion=0.3",
         # Difficulty 0.8 (64 px, three epochs) left DenseNet121/EfficientNetB4 at test AUC 0.51-0.60, and
         # 0.6 at 0.49-0.54.
         "--difficulty", "0.3", "--label-noise", "0.05", "--uncertain", "0.1", "--blank", "0.5", "--valid-share", "0"),
        ("--dataset", "chexpert", "--labels", "{d}/CheXpert-v1.0-small", "--images", "{d}/CheXpert-v1.0-small",
         "--split", "labelset", "--split-classes", *S1_CLASSES, "--test", "0.2", "--val", "0.1"),
        # At 1,200 images the grid took 18.4 min on 2 idle cores, 10 of them in EfficientNetB4 (its 470
        # layers: 47 s an epoch, 50 s to trace); 900 images and EfficientNetB4 for one cycle of the rate (2
        # epochs; its validation AUC was 0.63 after 2 epochs and 0.66 after 4).
        n=900, size=32, reduced={**_SMALL, "epochs": 4, "step_size_epochs": 1.0, "base_lr": 3e-4, "lr": 3e-3},
        arms={"efficientnetb4_enhance": {"epochs": 2}, "efficientnetb4_plain": {"epochs": 2}}),
    "s2": Phantoms(
        "nih",
        ("--findings", "Atelectasis", "Infiltration", "Effusion",
         "--prevalence", "Atelectasis=0.25", "Infiltration=0.25", "Effusion=0.25",
         "--difficulty", "0.3", "--label-noise", "0.05"),
        ("--dataset", "nih", "--labels", "{d}/Data_Entry_2017.csv", "--images", "{d}", "--split", "multilabel"),
        # S2's frozen arms stay frozen (no fine-tuning phase), its unfrozen ones train everything, for as many
        # epochs (the comparison S2 makes). At 1,000 images and 4 epochs the grid took 12.6 min on 2 idle
        # cores, 7 of them in the unfrozen ResNet-152 and ViT-B/16 (40-44 s an epoch: 58 M and 86 M weights).
        n=800, size=32, reduced={**_SMALL, "epochs": 3}),
    "s3": Phantoms(
        # Difficulty 0.8, then 0.5, left the 3-epoch 64 px arms near chance (micro-recall 0.26-0.52 on four
        # classes); at 0.3 and 32 px the handcrafted CNN reached validation accuracy 0.70 in four epochs.
        "covid_radiography", ("--difficulty", "0.3", "--label-noise", "0.05"),
        ("--dataset", "covid_radiography", "--images", "{d}", "--split", "multilabel", "--test", "0.2",
         "--val", "0.1"),
        n=1000, size=32, reduced={**_SMALL, "epochs": 4}),
    "s4": Phantoms(
        # Viral (interstitial) against bacterial (lobar) pneumonia is the hard cut at 32 px: at difficulty 0.3
        # every arm stayed near chance (test accuracy 0.30-0.41 on three classes); at 0.1 the baseline CNN
        # reached 0.46 and ResNet50 0.50, each predicting all three classes.
        "kermany", ("--difficulty", "0.1", "--label-noise", "0.05", "--valid-share", "0.2"),
        ("--dataset", "kermany", "--images", "{d}", "--classes", "3", "--split", "source"),
        # Nine arms, five of them two-phase (two graphs to trace each): at 1,000 images, one frozen and four
        # fine-tuning epochs the grid took 12.9 min on 2 idle cores, 3.4 of them in the ViT-B/16 (37 s an
        # epoch). Here 800 images, fine-tuning 3 epochs (the least S4 gives), the single-phase arms 4 epochs,
        # as many as the two-phase ones, and the ViT-B/16 2.
        n=800, size=32, reduced={**_SMALL, "epochs": 4}, two_phase={**_TWO_PHASE, "fine_tune_epochs": 3},
        arms={"vit_pretrained": {"epochs": 2}}),
    "s5": Phantoms(
        "kermany", ("--difficulty", "0.3", "--label-noise", "0.05", "--valid-share", "0.2"),
        ("--dataset", "kermany", "--images", "{d}", "--classes", "2", "--split", "source"),
        n=1000, size=32, reduced={**_SMALL, "epochs": 5}, two_phase=_TWO_PHASE),
}

TITLES = {
    "s1": "S1 - Detecting diseases from medical images using Deep Learning (CheXpert)",
    "s2": "S2 - X-ray image analysis using ML methods (NIH ChestX-ray14, noise)",
    "s3": "S3 - Lung diseases identification from X-rays (COVID-19 Radiography Database)",
    "s4": "S4 - BME course project (Kermany, normal / bacterial / viral pneumonia)",
    "s5": "S5 - x-ray (Kermany, normal vs pneumonia, ResNet50)",
}

# S2 tests its models on noisy images; the study names no noise model or level, so the sweep spans both
# of cxr_tf's radiographic ones from clean to strong.
NOISE_SWEEPS = {"s2": ("gaussian:0,5,10", "poisson:0,0.05,0.1")}

STUDIES: Registry[Study] = Registry("study")
for _name, _title in TITLES.items():
    STUDIES.register(_name)(Study(
        _name, _title, tuple(Arm(arm, recipe, overrides, label) for study, arm, recipe, overrides, label in ARMS
                             if study == _name), PHANTOMS[_name], noise_sweep=NOISE_SWEEPS.get(_name, ())))
