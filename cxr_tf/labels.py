"""Raw label states shared by manifests, records and the input pipeline.

Sources write a finding as positive (1), negative (0), uncertain (-1, CheXpert's labeller) or
leave it blank (not mentioned). Records keep all four; the label policy (U-Ones, U-Zeros,
U-Ignore, U-MultiClass; Irvin et al. 2019, https://arxiv.org/abs/1901.07031) is applied later,
in the input pipeline, so one build serves every experiment.
"""

from cxr_tf.registry import Choices

POSITIVE = 1
NEGATIVE = 0
UNCERTAIN = -1
# Records store states as int64; blank (NaN in a manifest) needs a code of its own so that it
# stays distinct from negative.
BLANK = -2

STATE_NAMES = {POSITIVE: "positive", NEGATIVE: "negative", UNCERTAIN: "uncertain", BLANK: "blank"}

# The label policies (``cxr_tf.pipeline.label_policy`` applies them): fit's --uncertainty, --blank and
# --propagate-parents; the split's stratification sees uncertain labels as zeros or ones only.
UNCERTAINTY_POLICIES = Choices("uncertainty policy", ("ones", "zeros", "ignore", "multiclass"))
BLANK_POLICIES = Choices("blank policy", ("zeros", "ignore"))
PROPAGATION_MODES = Choices("parent propagation", ("none", "positive", "uncertain"))
SPLIT_UNCERTAINTY_POLICIES = Choices("split uncertainty policy", ("zeros", "ones"))
