"""The pipeline spec: the one contract between the app, the command line and the engine.

A spec is plain, typed, validated data (pydantic). This module imports neither torch nor Qt,
so the app can read and edit specs without loading the training stack.

Relative paths in a spec file resolve against the folder of that file (see `load_spec`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from engine import arch_sizes
from engine.errors import InputError, Problem, problems_from_validation_error, register_unions
from engine.regular_files import read_regular_text

SCHEMA_VERSION = 1
SPEC_MAX_BYTES = 64 << 20  # a spec or project file: far more than any real one (2,000 nodes: 140 KB)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]


# ── data ─────────────────────────────────────────────────────────────────────────────────


class Split(_Strict):
    """How the data is cut into train / validation / test parts (fractions of all samples)."""

    val: float = Field(0.15, ge=0.0, lt=1.0, description="fraction held out for validation")
    test: float = Field(0.15, ge=0.0, lt=1.0, description="fraction held out for testing")
    seed: Seed = Field(0, description="seed of the shuffle before splitting")

    @model_validator(mode="after")
    def _leaves_training_data(self) -> Split:
        if self.val + self.test >= 0.95:
            raise ValueError(
                f"val + test = {self.val + self.test:.2f} leaves almost nothing to train on; "
                "keep val + test below 0.95"
            )
        return self


class BuiltinData(_Strict):
    """A dataset that ships inside an installed package (works offline)."""

    # What the app reads off a data class (never validated): `file_patterns`, the file names
    # (fnmatch, lower case) a drop from the file manager turns into this source, filling its
    # first required path; `sample_rank`, the rank of one sample when the format fixes it;
    # `card`, the node card's first line (str.format over the fields, paths as base names);
    # `read_patterns`, where set, all the file names it reads (more than a drop makes it: the
    # inspector's file picker, and a file kept when the user switches a node to this format).
    file_patterns: ClassVar[tuple[str, ...]] = ()
    sample_rank: ClassVar[int | None] = None
    card: ClassVar[str] = "{name} (built in)"
    test_fields: ClassVar[dict[str, str]] = {}  # source field -> the field naming its test file
    sample_shapes: ClassVar[dict[str, tuple[int, ...]]] = {"digits": (1, 8, 8)}  # by `name`

    format: Literal["builtin"] = "builtin"
    name: Literal["digits"] = Field(description="'digits': scikit-learn's 8x8 handwritten digits")
    split: Split = Split()
    use_labels: bool = Field(True, description="false: training ignores the labels and teachers "
                             "alone supply the targets; validation and test still measure with them")


class NpzData(_Strict):
    """A NumPy .npz file with an array `x` (samples first) and optionally `y` (class names or
    indices; '' or −1 marks a sample without a label, which goes to training only)."""

    file_patterns: ClassVar[tuple[str, ...]] = ("*.npz",)
    sample_rank: ClassVar[int | None] = None
    card: ClassVar[str] = "NPZ: {path}"
    test_fields: ClassVar[dict[str, str]] = {"path": "test_file"}

    format: Literal["npz"] = "npz"
    path: Path = Field(description="the .npz file")
    layout: Literal["auto", "nchw", "nhwc"] = Field(
        "auto", description="how images are stored in x: nchw [N, C, H, W] or nhwc [N, H, W, C] "
        "(transposed to [C, H, W] on reading); auto: nhwc when the last axis holds 1, 3 or 4 "
        "channels and the first does not (said in the log)")
    test_file: Path | None = Field(None, description="a separate labelled .npz for the test scores "
                                   "(replaces split.test), e.g. when x here has no labels")
    split: Split = Split()
    use_labels: bool = True


class CsvData(_Strict):
    """A CSV table with a header row: numeric feature columns and optionally one label column."""

    file_patterns: ClassVar[tuple[str, ...]] = ("*.csv", "*.tsv")
    sample_rank: ClassVar[int | None] = 1  # a row of features
    card: ClassVar[str] = "CSV: {path}"
    test_fields: ClassVar[dict[str, str]] = {"path": "test_file"}

    format: Literal["csv"] = "csv"
    path: Path = Field(description="the .csv file")
    label_column: str | None = Field(None, description="name of the label column; none: unlabeled")
    columns: list[str] | None = Field(None, description="the feature columns the student reads, "
                                      "by name; none: every column but the label")
    categorical: list[str] = Field(default_factory=list, description="columns that hold categories "
                                   "(text), one-hot encoded in the order of their sorted values")
    missing: Literal["refuse", "mean", "median", "zero"] = Field(
        "refuse", description="empty or NA cells in numeric columns: refuse (each is reported), "
        "or fill with the column's mean / median over the file, or 0; a categorical cell that is "
        "missing encodes as no category. The exported model does the same")
    delimiter: str | None = Field(None, min_length=1, max_length=1, description="the field "
                                  "separator; none: detected (, ; tab |)")
    test_file: Path | None = Field(None, description="a separate labelled CSV with the same "
                                   "columns for the test scores (replaces split.test)")
    split: Split = Split()
    use_labels: bool = True


class IdxData(_Strict):
    """IDX files, the MNIST format (gzipped or not), e.g. Debian's dataset-fashion-mnist."""

    file_patterns: ClassVar[tuple[str, ...]] = ("*idx*ubyte*", "*idx*.gz")
    sample_rank: ClassVar[int | None] = None
    card: ClassVar[str] = "IDX: {images}"
    test_fields: ClassVar[dict[str, str]] = {"images": "test_images", "labels": "test_labels"}

    format: Literal["idx"] = "idx"
    images: Path = Field(description="the IDX file of the samples (e.g. train-images-idx3-ubyte.gz)")
    labels: Path | None = Field(None, description="the IDX file of the labels; none: unlabeled, "
                                "the teachers alone supply the targets")
    test_images: Path | None = Field(None, description="IDX samples of a separate test set "
                                     "(e.g. t10k-images-idx3-ubyte.gz; replaces split.test)")
    test_labels: Path | None = Field(None, description="the IDX labels of the test samples")
    split: Split = Split()
    use_labels: bool = True


class NpyData(_Strict):
    """A NumPy .npy array of samples (samples first), memory-mapped: streamed from disk, so it
    need not fit in memory; uint8 images stay uint8 until the device. Labels, if any, in a
    second .npy."""

    file_patterns: ClassVar[tuple[str, ...]] = ("*.npy",)
    sample_rank: ClassVar[int | None] = None
    card: ClassVar[str] = "NPY: {path}"
    test_fields: ClassVar[dict[str, str]] = {"path": "test_path", "labels": "test_labels"}

    format: Literal["npy"] = "npy"
    path: Path = Field(description="the .npy file of the samples, samples first (np.save; no objects)")
    labels: Path | None = Field(None, description="a .npy of one label per sample (class names or "
                                "indices into classes); none: unlabelled, the teachers give the targets")
    layout: Literal["auto", "nchw", "nhwc"] = Field(
        "auto", description="how images are stored: nchw [N, C, H, W] or nhwc [N, H, W, C] "
        "(transposed batch by batch); auto: nhwc when the last axis holds 1, 3 or 4 channels and "
        "the first does not")
    test_path: Path | None = Field(None, description="a separate .npy of test samples (replaces split.test)")
    test_labels: Path | None = Field(None, description="the .npy of the test samples' labels")
    workers: int | None = Field(None, ge=0, le=64, description="processes reading batches; none: "
                                "the cores less one, from 1 to 8; 0: in the engine process itself")
    split: Split = Split()
    use_labels: bool = True


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")  # what an image folder reads (any case)


class FolderData(_Strict):
    """Images in a folder: one subfolder per class (labelled, each subfolder's name a class), or
    the images directly in it (unlabelled: a transfer set the teachers label). JPEG, PNG, WebP
    and BMP, read with Pillow; streamed from disk, so the folder need not fit in memory."""

    file_patterns: ClassVar[tuple[str, ...]] = ()  # a folder, not a file: dropped as a folder
    sample_rank: ClassVar[int | None] = 3
    card: ClassVar[str] = "Images: {path}"
    test_fields: ClassVar[dict[str, str]] = {"path": "test_folder"}
    test_clears: ClassVar[tuple[str, ...]] = ("unlabeled",)  # not part of a test set

    format: Literal["folder"] = "folder"
    path: Path = Field(description="a folder with one subfolder of images per class (each "
                       "subfolder's name is a class of the spec), or with the images directly in "
                       "it (no labels)", json_schema_extra={"format": "directory-path"})
    unlabeled: Path | None = Field(None, description="a folder of more images without labels (a "
                                   "transfer set): they join the training part, the teachers alone "
                                   "give their targets", json_schema_extra={"format": "directory-path"})
    test_folder: Path | None = Field(None, description="a separate labelled folder (one subfolder "
                                     "per class) for the test scores (replaces split.test)",
                                     json_schema_extra={"format": "directory-path"})
    size: list[Annotated[int, Field(ge=4, le=4096)]] = Field(
        [64, 64], min_length=2, max_length=2, description="the images' size for the student, "
        "[height, width]: each is scaled (keeping its aspect) and centre-cropped to it, or stretched")
    resize: Literal["crop", "stretch"] = Field("crop", description="crop: scale the shorter side "
                                               "and cut the centre; stretch: scale each side to size")
    channels: Literal[1, 3] = Field(3, description="3: RGB; 1: grey. Grey, palette and RGBA "
                                    "images are converted (transparency is dropped)")
    corrupt: Literal["skip", "refuse"] = Field(
        "skip", description="images that cannot be read (truncated, damaged, not an image): skip "
        "them (counted, the first named in the log) or refuse the data (each named)")
    workers: int | None = Field(None, ge=0, le=64, description="processes decoding images; none: "
                                "the cores less one, from 1 to 8; 0: in the engine process itself")
    split: Split = Split()
    use_labels: bool = True

    @classmethod
    def sample_shape_of(cls, values: dict) -> tuple[int, ...]:
        """One sample's shape [C, H, W] from the settings alone (the app reads it)."""
        h, w = values.get("size") or cls.model_fields["size"].default
        return (int(values.get("channels") or cls.model_fields["channels"].default), int(h), int(w))


TEXT_SUFFIXES = (".csv", ".tsv", ".jsonl", ".txt")  # what a text source reads (any case)


class TextData(_Strict):
    """Texts, UTF-8: a CSV or TSV with a header row (a text column, optionally a label column),
    JSON Lines (one object per line, the same two keys) or plain text (one text per line,
    unlabelled). The student reads token ids through its tokenizer, a `tokenizer.json` (Hugging
    Face `tokenizers`), or one trained on the training texts and saved with the run; each
    teacher reads the raw text through its own tokenizer (`teachers[i].input.tokenizer`)."""

    file_patterns: ClassVar[tuple[str, ...]] = ("*.jsonl", "*.txt")  # a .csv drops as a table
    read_patterns: ClassVar[tuple[str, ...]] = ("*.csv", "*.tsv", "*.jsonl", "*.ndjson", "*.txt")
    sample_rank: ClassVar[int | None] = 1  # token ids [max_length]
    card: ClassVar[str] = "Text: {path}"
    test_fields: ClassVar[dict[str, str]] = {"path": "test_file"}
    test_clears: ClassVar[tuple[str, ...]] = ("unlabeled",)  # not part of a test set

    format: Literal["text"] = "text"
    path: Path = Field(description="the texts: .csv, .tsv, .jsonl or .txt (one text per line), UTF-8")
    text_column: str = Field("text", min_length=1, description="the column (CSV) or key (JSONL) "
                             "holding the text; a .txt file is one text per line")
    label_column: str | None = Field(None, description="the column or key holding each text's "
                                     "class; none: unlabelled, the teachers alone give the targets")
    unlabeled: Path | None = Field(None, description="a file of more texts without labels (a "
                                   "transfer set): they join the training part, the teachers alone "
                                   "give their targets")
    test_file: Path | None = Field(None, description="a separate labelled file of the same kind "
                                   "for the test scores (replaces split.test)")
    tokenizer: Path | None = Field(None, description="the student's tokenizer, a tokenizer.json "
                                   "(Hugging Face tokenizers); none: one is trained on the training "
                                   "texts and saved with the run and the exported model")
    tokenizer_kind: Literal["bpe", "wordpiece"] = Field(
        "bpe", description="the kind of tokenizer trained when none is given: bpe (byte pairs, "
        "GPT-2's) or wordpiece (BERT's, lower-cased)")
    vocab_size: int = Field(8000, ge=64, le=1 << 20, description="the tokens a trained tokenizer "
                            "holds (the student's vocab_size must be at least this)")
    max_length: int = Field(128, ge=4, le=1 << 16, description="the most tokens of a text the "
                            "student reads (longer texts are cut); batches are padded only to "
                            "their longest text")
    split: Split = Split()
    use_labels: bool = True

    @classmethod
    def sample_shape_of(cls, values: dict) -> tuple[int, ...]:
        """One sample's shape [max_length] from the settings alone (the app reads it)."""
        return (int(values.get("max_length") or cls.model_fields["max_length"].default),)


DataSource = Annotated[BuiltinData | NpzData | NpyData | CsvData | IdxData | FolderData | TextData,
                       Field(discriminator="format")]


# ── models ───────────────────────────────────────────────────────────────────────────────


class ArchSize(BaseModel):
    """What an architecture costs for one sample shape, worked out without torch (the app shows
    it as the user types): `parameters`, exact; `activations`, the values kept for the backward
    pass per sample (an estimate within about a third of what torch keeps)."""

    parameters: int
    activations: int


def training_memory(size: ArchSize, batch_size: int, activation_bytes: int) -> int:
    """Bytes to train: the weights, their gradients and AdamW's two moments (fp32, 16 bytes a
    parameter), plus one batch's kept activations (2 bytes each under bf16/fp16, 4 in fp32)."""
    return 16 * size.parameters + batch_size * size.activations * activation_bytes


class MlpArch(_Strict):
    """A multi-layer perceptron on the flattened input."""

    # What the app reads off an architecture class (never validated): `sample_ranks`, the ranks
    # of one sample it takes (None: any), with `takes` saying so in words; `card`, the size on
    # the node card (str.format over the fields); `growable`, whether a student can grow from a
    # teacher of this architecture (Net2Net). The engine reads `sample_ranks` and `takes` too.
    # Every architecture also has `size(sample_shape, n_classes) -> ArchSize`, and `large`: a
    # student the engine compiles and runs in bf16 on a GPU by default.
    sample_ranks: ClassVar[tuple[int, ...] | None] = None
    growable: ClassVar[bool] = True
    large: ClassVar[bool] = False
    takes: ClassVar[str] = "samples of any shape (flattened)"
    card: ClassVar[str] = "{width}×{depth}"

    kind: Literal["mlp"] = "mlp"
    width: int = Field(256, ge=1, le=65536, description="units per hidden layer")
    depth: int = Field(2, ge=0, le=64, description="number of hidden layers")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="fraction of units dropped in training")

    def size(self, sample_shape: tuple[int, ...], n_classes: int) -> ArchSize:
        p, a = arch_sizes.mlp(self.width, self.depth, self.dropout, tuple(sample_shape), n_classes)
        return ArchSize(parameters=p, activations=a)


class CnnArch(_Strict):
    """A small convolutional network (conv-BN-ReLU blocks, global pooling, linear head)."""

    sample_ranks: ClassVar[tuple[int, ...] | None] = (3,)
    growable: ClassVar[bool] = True
    large: ClassVar[bool] = False
    takes: ClassVar[str] = "image data [C, H, W]"
    card: ClassVar[str] = "{channels}ch×{depth}"

    kind: Literal["cnn"] = "cnn"
    channels: int = Field(32, ge=1, le=4096, description="channels of the first block")
    depth: int = Field(3, ge=1, le=32, description="number of conv blocks")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="fraction of units dropped in training")

    def size(self, sample_shape: tuple[int, ...], n_classes: int) -> ArchSize:
        p, a = arch_sizes.cnn(self.channels, self.depth, self.dropout, tuple(sample_shape), n_classes)
        return ArchSize(parameters=p, activations=a)


class ResNetArch(_Strict):
    """A residual network (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016):
    basic blocks for depths 18 and 34, bottleneck blocks for 50; four stages whose channels
    double as the map halves; global average pooling, then the head."""

    sample_ranks: ClassVar[tuple[int, ...] | None] = (3,)
    growable: ClassVar[bool] = True
    large: ClassVar[bool] = True
    takes: ClassVar[str] = "image data [C, H, W]"
    card: ClassVar[str] = "{depth} ×{width}"

    kind: Literal["resnet"] = "resnet"
    depth: Literal[18, 34, 50] = Field(18, description="18 or 34: basic blocks; 50: bottleneck blocks")
    width: float = Field(1.0, ge=0.125, le=8.0, description="width multiplier: the first stage "
                         "has 64 × width channels (0.25: a quarter of ResNet-18's)")
    stem: Literal["auto", "small", "imagenet"] = Field(
        "auto", description="small: one 3×3 convolution at full resolution (images of 28–64 px); "
        "imagenet: a 7×7 stride-2 convolution and max pooling (224 px); auto: small up to 64 px")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="fraction of features dropped before the head")

    def size(self, sample_shape: tuple[int, ...], n_classes: int) -> ArchSize:
        p, a = arch_sizes.resnet(self.depth, self.width, self.stem, self.dropout, tuple(sample_shape), n_classes)
        return ArchSize(parameters=p, activations=a)


class VitArch(_Strict):
    """A vision transformer (Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021):
    the image cut into patches, each a token; pre-norm transformer blocks; a class token (or the
    mean of the tokens) read by the head."""

    sample_ranks: ClassVar[tuple[int, ...] | None] = (3,)
    growable: ClassVar[bool] = False
    large: ClassVar[bool] = True
    takes: ClassVar[str] = "image data [C, H, W] whose sides the patch size divides"
    card: ClassVar[str] = "{dim}×{depth} p{patch}"

    kind: Literal["vit"] = "vit"
    patch: int = Field(4, ge=1, le=64, description="patch side in pixels; it must divide the image's sides")
    dim: int = Field(192, ge=8, le=8192, description="width of each token")
    depth: int = Field(6, ge=1, le=64, description="transformer blocks")
    heads: int = Field(3, ge=1, le=128, description="attention heads; they must divide dim")
    mlp_ratio: float = Field(4.0, ge=0.25, le=16.0,
        description="hidden width of each block's MLP, as a multiple of dim")
    pooling: Literal["cls", "mean"] = Field("cls",
        description="cls: the head reads a class token; mean: the mean of the tokens")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout in the blocks")

    @model_validator(mode="after")
    def _heads_divide(self) -> VitArch:
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not a multiple of heads {self.heads}; each head "
                             "takes dim / heads values")
        return self

    def size(self, sample_shape: tuple[int, ...], n_classes: int) -> ArchSize:
        """ValueError (its words for the user) when the samples do not fit: not images, or
        sides the patch does not divide."""
        if len(sample_shape) != 3:
            raise ValueError(f"a vit takes {self.takes}; the samples are shaped {list(sample_shape)}")
        c, h, w = sample_shape
        if h % self.patch or w % self.patch:
            raise ValueError(f"the patch side {self.patch} does not divide the images' {h}×{w} pixels")
        tokens = (h // self.patch) * (w // self.patch) + (self.pooling == "cls")
        embedding = c * self.patch * self.patch * self.dim + self.dim + tokens * self.dim \
            + (self.dim if self.pooling == "cls" else 0)  # patch conv, position (and class) tokens
        p, a = arch_sizes.transformer(tokens, self.dim, self.depth, self.heads, self.mlp_ratio, self.dropout,
                                      n_classes, embedding, c * h * w)
        return ArchSize(parameters=p, activations=a)


class TransformerArch(_Strict):
    """A transformer encoder over token ids (Vaswani et al., 2017; BERT's encoder, Devlin et al.,
    2019): token and position embeddings, pre-norm blocks, padding masked out of attention and
    pooling. Samples are token ids [L], padded with `pad_id`."""

    sample_ranks: ClassVar[tuple[int, ...] | None] = (1,)
    growable: ClassVar[bool] = False
    large: ClassVar[bool] = True
    takes: ClassVar[str] = "token ids [L] (whole numbers below vocab_size)"
    card: ClassVar[str] = "{dim}×{depth} v{vocab_size}"

    kind: Literal["transformer"] = "transformer"
    vocab_size: int = Field(8192, ge=2, le=1 << 22,
        description="token ids the embedding holds; every id in the data is below it")
    max_length: int = Field(512, ge=1, le=1 << 16, description="the longest sequence (position embeddings)")
    pad_id: int = Field(0, ge=0, description="the id of padding, ignored by attention and pooling")
    dim: int = Field(256, ge=8, le=8192, description="width of each token")
    depth: int = Field(4, ge=1, le=64, description="transformer blocks")
    heads: int = Field(4, ge=1, le=128, description="attention heads; they must divide dim")
    mlp_ratio: float = Field(4.0, ge=0.25, le=16.0,
        description="hidden width of each block's MLP, as a multiple of dim")
    pooling: Literal["cls", "mean"] = Field("mean",
        description="mean: the mean of the non-padding tokens; cls: the first token")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout in the blocks")

    @model_validator(mode="after")
    def _fits(self) -> TransformerArch:
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not a multiple of heads {self.heads}; each head "
                             "takes dim / heads values")
        if self.pad_id >= self.vocab_size:
            raise ValueError(f"pad_id {self.pad_id} is not below vocab_size {self.vocab_size}")
        return self

    def size(self, sample_shape: tuple[int, ...], n_classes: int) -> ArchSize:
        """ValueError (its words for the user) when the samples are not sequences of at most
        max_length ids."""
        if len(sample_shape) != 1:
            raise ValueError(f"a transformer takes {self.takes}; the samples are shaped {list(sample_shape)}")
        length = sample_shape[0]
        if length > self.max_length:
            raise ValueError(f"the samples are {length} tokens long and max_length is {self.max_length}")
        embedding = (self.vocab_size + self.max_length) * self.dim  # token and position tables
        p, a = arch_sizes.transformer(length, self.dim, self.depth, self.heads, self.mlp_ratio, self.dropout,
                                      n_classes, embedding, length)
        return ArchSize(parameters=p, activations=a)


Architecture = Annotated[MlpArch | CnnArch | ResNetArch | VitArch | TransformerArch, Field(discriminator="kind")]


class TeacherInput(_Strict):
    """What one teacher expects as input. Each teacher sees the raw samples through its own
    contract (the data and the student are untouched), applied in this order: table columns;
    resize, then centre crop; channel order; value scale; mean/std per channel; layout. The
    number type (float32, float64, uint8) is read from the model file.

    `distill-engine inspect` proposes it from what the file says (input shape, metadata)."""

    layout: Literal["auto", "nchw", "nhwc"] = Field(
        "auto", description="images: the axis order the model takes; auto: read from the model's "
        "input shape (an ONNX input [N, H, W, C] is nhwc)")
    size: list[Annotated[int, Field(ge=1, le=8192)]] | None = Field(
        None, min_length=2, max_length=2, description="images: resize to [height, width] "
        "(bilinear) before the crop; none: as the data holds them")
    crop: list[Annotated[int, Field(ge=1, le=8192)]] | None = Field(
        None, min_length=2, max_length=2, description="images: centre crop to [height, width] "
        "after the resize; none: no crop")
    channel_order: Literal["rgb", "bgr"] = Field("rgb", description="images: bgr reverses the "
                                                 "data's RGB channels (OpenCV-trained models)")
    scale: float = Field(1.0, gt=0.0, le=1e6, description="every value is multiplied by this "
                         "first, e.g. 0.00392157 (1/255) for a model trained on 0-1 pixels given "
                         "0-255 data")
    mean: list[float] | None = Field(None, min_length=1, description="subtracted after the scale, "
                                     "one value per channel (or one for all), e.g. ImageNet's "
                                     "[0.485, 0.456, 0.406]")
    std: list[float] | None = Field(None, min_length=1, description="divided by after the mean, "
                                    "e.g. ImageNet's [0.229, 0.224, 0.225]")
    columns: list[str] | None = Field(None, min_length=1, description="tables: the columns the "
                                      "teacher was trained on, by name, in its order; none: all "
                                      "the student's columns")
    tokenizer: Path | None = Field(None, description="text: the teacher's own tokenizer.json "
                                   "(Hugging Face tokenizers); none: a tokenizer.json beside the "
                                   "model file, if any (a model that takes raw strings needs none)")
    max_length: int | None = Field(None, ge=1, le=1 << 16, description="text: the most tokens "
                                   "the teacher reads (longer texts are cut); none: the model's "
                                   "fixed input length, else the tokenizer's, else 512")
    roles: dict[str, Literal["ids", "mask", "type_ids", "positions", "text"]] = Field(
        default_factory=dict, description="text: what each input of the model takes, by input "
        "name: ids (token ids), mask (1 for tokens, 0 for padding), type_ids (all 0), positions "
        "(0, 1, 2, …), text (the raw strings); inputs not named here are read from their names "
        "and types (…ids, …mask, …type…, …position…, a string input)")

    @model_validator(mode="after")
    def _std_positive(self) -> TeacherInput:
        if self.std is not None and any(s <= 0 for s in self.std):
            raise ValueError("std holds a value ≤ 0; every std must be positive")
        if self.mean is not None and self.std is not None and \
                1 not in (len(self.mean), len(self.std)) and len(self.mean) != len(self.std):
            raise ValueError(f"mean has {len(self.mean)} values and std {len(self.std)}; give one "
                             "per channel for both")
        return self

    @property
    def is_identity(self) -> bool:
        return self == TeacherInput(layout=self.layout)

    @property
    def for_text(self) -> list[str]:
        """The text-only fields this contract sets."""
        return [k for k in ("tokenizer", "max_length") if getattr(self, k) is not None] + \
            (["roles"] if self.roles else [])

    @property
    def for_numbers(self) -> list[str]:
        """The image and table fields this contract sets (none of them apply to text)."""
        plain = TeacherInput()
        return [k for k in ("size", "crop", "channel_order", "scale", "mean", "std", "columns", "layout")
                if getattr(self, k) != getattr(plain, k)]


class TeacherSpec(_Strict):
    """A frozen expert model. It may know only some of the student's classes."""

    name: str = Field(min_length=1)
    path: Path
    format: Literal["onnx", "safetensors", "pytorch", "torchscript"] | None = Field(
        None, description="file format; none: guessed from the extension (torchscript: only "
        "when set, and only with `trusted`)"
    )
    trusted: bool = Field(
        False, description="TorchScript holds code that runs when it is loaded: true only for "
        "files from a source you trust")
    classes: list[str] = Field(min_length=1, description="the teacher's class names, output order")
    mapping: dict[str, str] = Field(
        default_factory=dict,
        description="teacher class name -> student class name, where the names differ",
    )
    weight: float = Field(1.0, gt=0.0, le=1e6, description="weight under 'fixed' teacher weighting")
    outputs: Literal["auto", "logits", "probabilities"] = Field(
        "auto", description="what the model's output holds; auto: probabilities when every row "
        "of a sample batch is non-negative and sums to 1, logits otherwise (said in the log)"
    )
    input: TeacherInput = Field(default_factory=TeacherInput, description="the input the "
                                "model expects: scale, mean/std, layout, size, columns")
    architecture: Architecture | None = Field(
        None, description="zoo architecture of a safetensors or pytorch (state dict) teacher"
    )

    @property
    def resolved_format(self) -> str:
        if self.format:
            return self.format
        suffix = self.path.suffix.lower()
        return {".onnx": "onnx", ".safetensors": "safetensors", ".pt": "pytorch",
                ".pth": "pytorch"}.get(suffix, suffix.lstrip("."))

    def student_classes_of(self) -> list[str]:
        """The student class each teacher output maps to, in output order."""
        return [self.mapping.get(c, c) for c in self.classes]


MASKED_KINDS = ("transformer", "vit")  # students made of tokens: masked prediction pretrains them


def pretraining_method(method: str, architecture_kind: str) -> str:
    """The method that runs ('auto' resolved by the student's architecture)."""
    if method != "auto":
        return method
    return "masked" if architecture_kind in MASKED_KINDS else "simclr"


class SelfSupervisedSpec(_Strict):
    """Self-supervised pretraining of the student's trunk (init 'self_supervised'), a phase of
    the run before distillation, on the training data (the unlabelled transfer set, and any
    labelled samples with their labels unused). Two methods (engine/pretrain/):

    simclr: two random views of each sample and SimCLR's contrastive NT-Xent loss through a
    projection head that is dropped afterwards (Chen, Kornblith, Norouzi, Hinton, "A Simple
    Framework for Contrastive Learning of Visual Representations", ICML 2020). Views of images:
    random resized crop, flip, brightness and contrast (engine/augment.py); views of tables
    (flat vectors): masked features plus Gaussian noise (as in SCARF/VIME-style tabular
    pretraining).

    masked: masked prediction, for the students made of tokens. A transformer over text hides
    a share of each text's tokens and predicts them (BERT's masked language model: Devlin et
    al., NAACL 2019); a ViT hides a share of each image's patches and predicts their pixels
    (SimMIM: Xie et al., CVPR 2022). The mask embedding and the decoder are dropped afterwards.

    Pretrained features can let a strong student learn past a weak teacher's mistakes (Burns
    et al., "Weak-to-Strong Generalization", 2023). Afterwards a linear probe on the labels
    there are measures the features (pretrain/probe_acc)."""

    method: Literal["auto", "simclr", "masked"] = Field(
        "auto", description="simclr: the contrastive NT-Xent loss between two views of each "
        "sample (Chen et al. 2020; images and tables); masked: predict hidden tokens (text "
        "transformer, BERT) or hidden patches' pixels (ViT, SimMIM); auto: masked for a "
        "transformer or ViT student, simclr for the others")
    epochs: int = Field(10, ge=1, le=10_000, description="passes over the training data before "
                        "distillation")
    lr: float = Field(1e-3, gt=0.0, le=10.0, description="learning rate (AdamW, cosine schedule)")
    batch_size: int = Field(256, ge=2, le=65_536, description="samples per batch; each view is "
                            "contrasted with the 2·batch − 2 others, so larger batches give more "
                            "negatives")
    temperature: float = Field(0.2, gt=0.0, le=10.0, description="τ of the contrastive softmax "
                               "over cosine similarities")
    projection_dim: int = Field(128, ge=2, le=8192, description="output width of the projection "
                                "head the loss sees (dropped after pretraining)")
    crop_scale: list[Annotated[float, Field(gt=0.0, le=1.0)]] = Field(
        [0.3, 1.0], min_length=2, max_length=2, description="images: [min, max] share of the "
        "image's area a view's random crop keeps")
    flip: bool = Field(True, description="images: mirror views left-right at random (off where "
                       "sides matter, e.g. digits)")
    color_jitter: float = Field(0.4, ge=0.0, le=1.0, description="images: strength of the views' "
                                "brightness/contrast change; 0: off")
    feature_mask: float = Field(0.3, ge=0.0, lt=1.0, description="tables: share of a view's "
                                "features set to their mean")
    feature_noise: float = Field(0.1, ge=0.0, le=10.0, description="tables: standard deviation of "
                                 "the Gaussian noise added to a view's standardised features")
    mask_ratio: float | None = Field(None, gt=0.0, lt=1.0, description="masked: share of each "
                                     "sample's tokens or patches hidden; none: 0.15 for text (BERT), "
                                     "0.6 for a ViT (SimMIM)")

    def method_for(self, architecture_kind: str) -> str:
        """The method that runs for a student of this kind ('auto' resolved)."""
        return pretraining_method(self.method, architecture_kind)

    @model_validator(mode="after")
    def _crop_ordered(self) -> SelfSupervisedSpec:
        low, high = self.crop_scale
        if low > high:
            raise ValueError(f"crop_scale is [{low:g}, {high:g}]: the minimum is above the maximum; "
                             "give [min, max]")
        return self


class StudentInit(_Strict):
    """Where the student's starting weights come from.

    scratch: random. grow: Net2Net's function-preserving widening and deepening of one (MLP,
    CNN or ResNet, zoo-weights) teacher of the student's kind, so the large student starts out
    computing exactly what the small teacher computes (Chen, Goodfellow, Shlens, "Net2Net", ICLR
    2016). fedavg: the average of the teachers' weights, which must share the student's
    architecture (McMahan et al., "Federated Averaging", AISTATS 2017; the start point of FedDF).
    weights: a safetensors file, e.g. an earlier run's student; tensors whose shapes match are
    copied, the output rows by class name. self_supervised: random, then a pretraining phase of
    the student's trunk on the training data, labels unused (`pretraining`, engine/pretrain/).
    """

    kind: Literal["scratch", "grow", "fedavg", "weights", "self_supervised"] = "scratch"
    teacher: str | None = Field(None, description="grow: the name of the teacher to grow from")
    path: Path | None = Field(None, description="weights: a .safetensors file to start from")
    pretraining: SelfSupervisedSpec | None = Field(
        None, description="self_supervised: how the trunk is pretrained before distillation (SimCLR, or "
        "masked prediction for a transformer or ViT; on the training data with labels unused); none: "
        "the defaults")

    @model_validator(mode="after")
    def _what_it_needs(self) -> StudentInit:
        if self.kind == "grow" and not self.teacher:
            raise ValueError("init 'grow' needs `teacher`: the name of the teacher to grow from")
        if self.kind == "weights" and (self.path is None or str(self.path) in ("", ".")):
            raise ValueError("init 'weights' needs `path`: a .safetensors file (an earlier student)")
        if self.kind == "self_supervised" and self.pretraining is None:
            self.pretraining = SelfSupervisedSpec()
        if self.kind != "self_supervised" and self.pretraining is not None:
            raise ValueError(f"`pretraining` sets the self-supervised pretraining, but init is "
                             f"'{self.kind}'; set kind to 'self_supervised', or leave `pretraining` out")
        return self


class StudentSpec(_Strict):
    """The larger, general model that learns from all teachers."""

    architecture: Architecture = MlpArch()
    init: StudentInit = StudentInit()

    @model_validator(mode="after")
    def _pretraining_fits(self) -> StudentSpec:
        pretraining, kind = self.init.pretraining, self.architecture.kind
        if pretraining is None:
            return self
        method = pretraining.method_for(kind)
        if method == "masked" and kind not in MASKED_KINDS:
            raise ValueError(f"masked pretraining predicts hidden tokens or patches, and a {kind} student "
                             "has neither; set init.pretraining.method to simclr (or auto), or use a "
                             "transformer (text) or vit (images) student")
        if method == "simclr" and kind == "transformer":
            raise ValueError("simclr pretraining contrasts augmented views of images or tables, and a "
                             "transformer reads token ids; set init.pretraining.method to masked (or auto)")
        return self


class HintSpec(_Strict):
    """One feature hint: a student layer's output, through a learned adapter, matches a
    teacher's intermediate features (FitNets, Romero et al., ICLR 2015)."""

    teacher: str = Field(min_length=1, description="the teacher's name")
    teacher_layer: str = Field(min_length=1, description="ONNX: the name of a tensor in the "
                               "graph; zoo weights: a module name such as body.2 (a wrong name is "
                               "answered with the list of names)")
    student_layer: str = Field("body", min_length=1, description="a module of the student, e.g. "
                               "body.1 or body (the features before the head)")


class CalibrationSpec(_Strict):
    """A few labelled samples per class (taken from the training split; every other label stays
    hidden) fit the gate of a mixture of experts: the teachers are the experts, and the gate,
    reading each teacher's whole output, weighs whose classes a sample belongs to, so that
    teachers whose class subsets do not overlap merge into one distribution over all classes
    (see engine/strategies/calibration.py `Calibrator` and docs/STRATEGIES.md)."""

    labels_per_class: int = Field(10, ge=1, le=100000, description="labelled training samples "
                                  "per class the gate is fitted on")
    weight: float = Field(1.0, ge=0.0, le=100.0, description="weight of cross-entropy on those "
                          "few labels in the student's loss")


class StrategySpec(_Strict):
    """How teachers teach. Every option is a documented method; see engine/losses.py."""

    kind: Literal["hinton_kd"] = "hinton_kd"
    temperature: float = Field(4.0, gt=0.0, le=100.0, description="Hinton KD: softens the "
                               "teachers' and the student's outputs; 2-8 is usual")
    hard_label_weight: float = Field(
        0.5, ge=0.0, le=1.0, description="weight of cross-entropy on labels, when labels exist"
    )
    teacher_weighting: Literal["uniform", "fixed", "confidence", "entropy", "selective",
                               "label_aware"] = Field(
        "uniform", description="uniform: all teachers equal; fixed: each teacher's `weight`; "
        "confidence / entropy: per sample, by how sure each teacher is (no labels needed); "
        "selective: per sample, only the least ambiguous teacher (Shen et al. ICCV 2019); "
        "label_aware: per sample, by each teacher's cross-entropy on the label (CA-MKD-style, "
        "Zhang et al. 2022; needs labels)"
    )
    partial_classes: Literal["renormalize", "zero_fill"] = Field(
        "renormalize", description="teachers that know only some classes: renormalize the "
        "student over each teacher's classes (UHC, Vongkulbhisal et al. CVPR 2019); zero_fill: treat unknown "
        "classes as "
        "probability 0 (the naive baseline)")
    combine: Literal["per_teacher", "average_logits"] = Field(
        "per_teacher", description="per_teacher: a weighted sum of one KD term per teacher; "
        "average_logits: one KD term against the teachers' averaged logits (ensemble "
        "distillation, FedDF, Lin et al. NeurIPS 2020; every teacher must know every class)")
    calibration: CalibrationSpec | None = Field(
        None, description="a few labels per class fit a mixture-of-experts gate over the "
        "teachers, to merge teachers whose class subsets do not overlap")
    hints: list[HintSpec] = Field(default_factory=list, description="feature hints (FitNets)")
    hint_weight: float = Field(1.0, ge=0.0, le=1000.0, description="weight of the hint losses")
    task_heads: bool = Field(False, description="a head per teacher on the student's shared "
                             "trunk, each learning its teacher's own outputs, beside the unified "
                             "head (exported: the unified head only)")
    task_head_weight: float = Field(0.5, ge=0.0, le=100.0, description="weight of the task "
                                    "heads' losses")
    confidence_weight: float = Field(
        0.0, ge=0.0, le=1.0, description="weak-to-strong auxiliary confidence loss: the share "
        "of cross-entropy on the student's own hardened predictions (Burns et al. 2023); 0: off")
    confidence_warmup: float = Field(0.2, ge=0.0, le=1.0, description="fraction of the steps "
                                     "over which the confidence share ramps up from 0")
    previous_student: Path | None = Field(
        None, description="continual distillation: an earlier run's student.safetensors, "
        "kept as an extra teacher (learning without forgetting) and used as the starting weights")

    @model_validator(mode="after")
    def _previous_student_is_a_file(self) -> StrategySpec:
        if self.previous_student is not None and str(self.previous_student) in ("", "."):
            raise ValueError("previous_student is empty: give an earlier run's student.safetensors, "
                             "or leave it out")
        return self


# ── compression and export ───────────────────────────────────────────────────────────────


class PruneStep(_Strict):
    """Pruning, then a short distillation fine-tune from the same teachers to win back accuracy.

    magnitude: zero the smallest weights (the file keeps its size; sparse weights compress).
    structured: remove whole hidden units / conv channels, so the layers really shrink.
    """

    kind: Literal["prune"] = "prune"
    method: Literal["magnitude", "structured"] = "magnitude"
    sparsity: float = Field(0.5, gt=0.0, lt=1.0, description="fraction of weights (magnitude) "
                            "or of hidden units and channels (structured) removed")
    scope: Literal["layer", "global"] = Field(
        "layer", description="magnitude only: the same sparsity in every layer, or the smallest "
        "weights of the whole model")
    finetune_epochs: int = Field(3, ge=0, le=100000, description="distillation fine-tune after pruning")
    finetune_lr: float = Field(1e-3, gt=0.0, le=10.0, description="learning rate of the fine-tune")


class QuantizeStep(_Strict):
    """int8 with onnxruntime's quantization, checked on the test split at export."""

    kind: Literal["quantize"] = "quantize"
    mode: Literal["dynamic", "static"] = Field(
        "static", description="static: activation ranges calibrated on training samples (fast "
        "int8 kernels, for CNNs too); dynamic: weights int8, activations quantized on the fly")
    calibration_samples: int = Field(256, ge=1, le=1_000_000, description="static only")
    max_accuracy_drop: float = Field(
        1.0, ge=0.0, le=100.0, description="test accuracy points the int8 model may lose; "
        "above it the int8 file is not kept (the fp32 file always is)")


CompressionStep = Annotated[PruneStep | QuantizeStep, Field(discriminator="kind")]


class ExportSpec(_Strict):
    """Where a finished run writes its verified ONNX model, weights and report."""

    folder: Path | None = Field(None, description="none: 'export' inside the run folder",
                                json_schema_extra={"format": "directory-path"})
    safetensors: bool = Field(True, description="also copy the student's weights as safetensors")


class AugmentSpec(_Strict):
    """Random changes to the training images, a new draw per sample and epoch (engine/augment.py):
    an Inception-style random resized crop (Szegedy et al. 2015), a horizontal flip and a colour
    jitter (Krizhevsky et al. 2012; Howard 2013). Images only; validation and test see the
    images as they are. Each sample's draw depends only on the seed, the sample and the epoch
    (or view), so it is the same on any device and in any batch."""

    crop: bool = Field(True, description="a random resized crop: a random part of the image "
                       "(area share in crop_scale, aspect in crop_ratio) scaled back to the "
                       "full size; false: the whole image")
    crop_scale: list[Annotated[float, Field(gt=0.0, le=1.0)]] = Field(
        [0.6, 1.0], min_length=2, max_length=2, description="[min, max] share of the image's "
        "area the crop keeps (each above 0, at most 1)")
    crop_ratio: list[Annotated[float, Field(gt=0.0, le=100.0)]] = Field(
        [3 / 4, 4 / 3], min_length=2, max_length=2, description="[min, max] aspect "
        "(width / height) of the crop, e.g. [0.75, 1.333]")
    flip: bool = Field(True, description="mirror left-right with probability 0.5 (leave off "
                       "for data where sides matter, e.g. digits or text)")
    color_jitter: float = Field(0.2, ge=0.0, le=1.0, description="strength s of a random "
                                "brightness, contrast and saturation change, each a factor in "
                                "[1-s, 1+s], relative to the image's own values (any value "
                                "range); 0: off")
    targets: Literal["live", "views"] = Field(
        "live", description="live: the teachers run on every augmented batch (exact; a teacher "
        "pass per epoch); views: `views` augmented copies of each sample are labelled by the "
        "teachers once and kept on disk, epoch e uses copy e % views (cheap per epoch; the "
        "cache takes samples × views × classes × 4 bytes per teacher)")
    views: int = Field(4, ge=1, le=64, description="views: the augmented copies per sample "
                       "(K) the teachers label once")

    @model_validator(mode="after")
    def _ranges_ordered(self) -> AugmentSpec:
        for name in ("crop_scale", "crop_ratio"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"{name} is [{low:g}, {high:g}]: the minimum is above the "
                                 f"maximum; give [min, max]")
        return self


class TrainingSpec(_Strict):
    """How the student trains."""

    epochs: int = Field(10, ge=1, le=100000, description="passes over the training split")
    batch_size: int = Field(64, ge=1, le=1 << 20, description="samples per step")
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0.0, le=10.0, description="learning rate (the start; under "
                      "'cosine' annealed towards 0)")
    weight_decay: float = Field(0.0, ge=0.0, le=10.0, description="weight decay (decoupled under adamw)")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="used by sgd")
    schedule: Literal["constant", "cosine"] = "cosine"
    seed: Seed = 0
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    cpu_threads: int | None = Field(
        None, ge=1, le=1024, description="CPU threads for torch; none: the physical cores, up to 8"
    )
    checkpoint_every_epochs: int = Field(1, ge=1, description="a resumable checkpoint every so "
                                         "many epochs")
    compile: bool | None = Field(None, description="torch.compile the student's training step: "
                                 "faster steps after a compile of tens of seconds (needs a C++ "
                                 "compiler on the CPU); none: on for large students (resnet, vit, "
                                 "transformer) on a GPU. A step that fails to compile runs uncompiled, "
                                 "and the log says so")
    accumulate: int = Field(1, ge=1, le=1024, description="gradient accumulation: each batch is cut into "
                            "this many parts, each run forward and backward alone, then one optimiser "
                            "step: the memory of one part, the step of the whole batch (BatchNorm "
                            "and the hint loss's scale see each part alone)")
    activation_checkpointing: bool = Field(False, description="keep only each block's input and "
                                           "recompute the rest in the backward pass: less memory "
                                           "for about a third more compute (large students)")
    gradient_norms: bool = Field(False, description="log each layer group's gradient norm as curves "
                                 "(slightly slower): shows which layers learn, stall or blow up")
    teacher_outputs: Literal["cache", "live"] = Field(
        "cache", description="cache: each teacher runs once over the data, its outputs kept on "
        "disk and reused by later runs with the same teacher and data; live: every teacher runs "
        "on every batch")
    augment: AugmentSpec | None = Field(
        None, description="random crops, flips and colour changes of the training images "
        "(images only); none: no augmentation")

class PipelineSpec(_Strict):
    """The whole pipeline: data, teachers, student, strategy and training settings."""

    schema_version: int = Field(description=f"format version of this file; this build reads {SCHEMA_VERSION}")
    name: str = Field(min_length=1, max_length=200)
    data: DataSource
    classes: list[str] = Field(min_length=2, description="the student's class names, output order")
    teachers: list[TeacherSpec] = Field(
        default_factory=list, description="none: the student learns from labels alone "
        "(strategy.hard_label_weight 1), e.g. to train an expert or an oracle")
    student: StudentSpec = StudentSpec()
    strategy: StrategySpec = StrategySpec()
    training: TrainingSpec = TrainingSpec()
    compression: list[CompressionStep] = Field(
        default_factory=list, description="after training, in order: prune steps, then at most "
        "one quantize step (last)")
    export: ExportSpec | None = Field(
        None, description="export when the run completes (a quantize step exports too)")
    layout: dict[str, Any] | None = Field(
        None, description="canvas layout (node positions); read by the app, ignored by the engine"
    )

    @model_validator(mode="after")
    def _quantize_last(self) -> PipelineSpec:
        kinds = [c.kind for c in self.compression]
        if kinds.count("quantize") > 1 or ("quantize" in kinds and kinds[-1] != "quantize"):
            raise ValueError("compression: quantization works on the exported model, so there is "
                             "at most one quantize step and it comes last; move it after the "
                             "prune steps")
        return self

    @property
    def quantize(self) -> QuantizeStep | None:
        return next((c for c in self.compression if isinstance(c, QuantizeStep)), None)

    @property
    def prune_steps(self) -> list[PruneStep]:
        return [c for c in self.compression if isinstance(c, PruneStep)]

    @property
    def exports(self) -> bool:
        return self.export is not None or self.quantize is not None

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude_none=True)


register_unions(PipelineSpec)  # error paths leave out the union tags pydantic adds (engine.errors)


# ── checks beyond the types ──────────────────────────────────────────────────────────────


def semantic_problems(classes: list[str], teachers: dict[int, TeacherSpec]) -> list[Problem]:
    """Every problem that types alone cannot catch: repeated names, the class mapping.

    `teachers` maps each teacher's position in the spec to its (valid) spec, so the checks
    also run on the teachers that did validate when others did not.
    """
    problems: list[Problem] = []
    dupes = sorted({c for c in classes if classes.count(c) > 1})
    if dupes:
        problems.append(Problem("classes", f"class names repeat: {', '.join(dupes)}",
                                "give every student class a different name"))
    names = [t.name for t in teachers.values()]
    student = set(classes)
    for i, t in teachers.items():
        where = f"teachers[{i}]"
        if names.count(t.name) > 1:
            problems.append(Problem(f"{where}.name", f"teacher name '{t.name}' is used twice",
                                    "give every teacher a different name"))
        if t.resolved_format == "torchscript" and not t.trusted:
            problems.append(Problem(
                f"{where}.trusted", f"'{t.path.name}' is TorchScript, which holds code that runs "
                "when the file is loaded", "set \"trusted\": true only if you trust where the file "
                "comes from; otherwise export the model to ONNX or save its state dict"))
        if t.resolved_format not in ("onnx", "safetensors", "pytorch", "torchscript"):
            problems.append(Problem(
                f"{where}.path", f"cannot tell the format of '{t.path.name}'",
                "use a .onnx, .safetensors, .pt or .pth file, or set `format`"))
        if t.resolved_format in ("safetensors", "pytorch") and t.architecture is None:
            problems.append(Problem(
                f"{where}.architecture",
                f"a {t.resolved_format} teacher holds only weights and needs its zoo architecture",
                "add e.g. \"architecture\": {\"kind\": \"mlp\", \"width\": 64, \"depth\": 1}"))
        for src in t.mapping:
            if src not in t.classes:
                problems.append(Problem(
                    f"{where}.mapping.{src}", f"'{src}' is not one of the teacher's classes",
                    f"map only the teacher's classes: {', '.join(t.classes)}"))
        mapped = t.student_classes_of()
        for own, target in zip(t.classes, mapped):
            if target not in student:
                problems.append(Problem(
                    f"{where}.classes", f"teacher class '{own}' maps to '{target}', "
                    "which is not a student class",
                    f"add \"mapping\": {{\"{own}\": \"<one of {', '.join(classes)}>\"}} "
                    "or rename the class"))
        doubled = sorted({c for c in mapped if mapped.count(c) > 1})
        if doubled:
            problems.append(Problem(
                f"{where}.mapping", f"several teacher classes map to {', '.join(doubled)}",
                "each teacher class must map to a different student class"))
    return problems


def strategy_problems(spec: PipelineSpec) -> list[Problem]:
    """What the strategy asks of the teachers, the student and the data."""
    strategy, problems = spec.strategy, []
    names = {t.name: t for t in spec.teachers}
    labels = getattr(spec.data, "use_labels", True)
    if not spec.teachers and strategy.previous_student is None:
        if strategy.hard_label_weight != 1.0 or not labels:
            problems.append(Problem("teachers", "the spec has no teachers, so the student can "
                                    "learn only from labels", "add a teacher, or keep the data's "
                                    "labels and set strategy.hard_label_weight to 1"))
    for i, hint in enumerate(strategy.hints):
        if hint.teacher not in names:
            problems.append(Problem(f"strategy.hints[{i}].teacher", f"no teacher is named "
                                    f"'{hint.teacher}'", f"use one of: {', '.join(names) or '(none)'}"))
    init = spec.student.init
    if init.kind == "grow":
        t = names.get(init.teacher or "")
        if t is None:
            problems.append(Problem("student.init.teacher", f"no teacher is named '{init.teacher}'",
                                    f"grow from one of: {', '.join(names) or '(none)'}"))
        elif t.architecture is None or t.architecture.kind != spec.student.architecture.kind or \
                not type(t.architecture).growable:
            able = [a.model_fields["kind"].default for a in get_args(get_args(Architecture)[0]) if a.growable]
            kinds = f"{', '.join(able[:-1])} or {able[-1]}" if len(able) > 1 else able[0]
            problems.append(Problem("student.init", f"growing (Net2Net) works from {kinds} "
                                    "teachers given as zoo weights into a student of the same architecture",
                                    "give the teacher the student's architecture, or use init 'scratch'"))
    if init.kind in ("grow", "fedavg"):
        starts = [t for t in spec.teachers if init.kind == "fedavg" or t.name == init.teacher]
        reshaped = [t.name for t in starts if not t.input.is_identity or t.input.layout == "nhwc"]
        if reshaped:
            problems.append(Problem("student.init", f"init '{init.kind}' copies weights that read the "
                                    f"samples through an input contract ({', '.join(reshaped)}), which "
                                    "the student would not apply", "use init 'scratch', or teachers "
                                    "that take the samples as the data holds them"))
    if strategy.previous_student is not None and init.kind != "scratch":
        problems.append(Problem("student.init", f"the student would start from init '{init.kind}' "
                                "and from the previous student at once", "leave init at 'scratch' "
                                "(a continual run starts from the previous student), or drop "
                                "previous_student"))
    if init.kind == "fedavg" and (not spec.teachers or any(
            t.architecture != spec.student.architecture for t in spec.teachers)):
        problems.append(Problem("student.init", "fedavg averages the teachers' weights, so every "
                                "teacher must be zoo weights with the student's architecture",
                                "give every teacher the student's architecture, or use init 'scratch'"))
    if strategy.combine == "average_logits":
        partial = [t.name for t in spec.teachers if set(t.student_classes_of()) != set(spec.classes)]
        if partial:
            problems.append(Problem("strategy.combine", "averaging logits needs teachers that know "
                                    f"every class; {', '.join(partial)} know only some",
                                    "use combine 'per_teacher' for teachers with class subsets"))
    needs_labels = {"label_aware": "teacher_weighting 'label_aware'"}.get(strategy.teacher_weighting)
    if needs_labels and not labels:
        problems.append(Problem("strategy.teacher_weighting", f"{needs_labels} needs labels, and "
                                "the data's labels are off", "turn data.use_labels on, or pick "
                                "a label-free weighting: confidence, entropy or selective"))
    return problems + augment_problems(spec) + text_problems(spec)


def text_problems(spec: PipelineSpec) -> list[Problem]:
    """Text data needs a transformer student and text contracts; other data, no text fields."""
    problems: list[Problem] = []
    if spec.data is None:  # the app checks a pipeline before its data source is linked
        return problems
    text = spec.data.format == "text"
    arch = spec.student.architecture
    if text and arch.kind != "transformer":
        problems.append(Problem("student.architecture.kind", f"text data gives the student token ids, "
                                f"and a {arch.kind} reads {type(arch).takes}",
                                "use a transformer student for text"))
    if text and arch.kind == "transformer" and spec.data.max_length > arch.max_length:
        problems.append(Problem("student.architecture.max_length", f"the data cuts texts at "
                                f"{spec.data.max_length} tokens and the student holds positions for "
                                f"{arch.max_length}", f"set student.architecture.max_length to at least "
                                f"{spec.data.max_length}, or data.max_length lower"))
    if text and spec.strategy.hints:
        problems.append(Problem("strategy.hints", "feature hints match a student layer to a teacher's "
                                "features sample by sample, and text batches are cut to their longest "
                                "text, so per-token features differ in length from batch to batch",
                                "remove the feature hints for text; task heads and the KD terms work"))
    if text and spec.strategy.previous_student is not None:
        problems.append(Problem("strategy.previous_student", "continual distillation reads the earlier "
                                "student as a teacher of images or tables; with text it is not supported yet",
                                "start the student from it instead: student.init kind weights, path the "
                                "earlier student.safetensors"))
    if text and spec.training.teacher_outputs == "live" and spec.teachers:
        problems.append(Problem("training.teacher_outputs", "text teachers read the texts once, "
                                "before training (nothing changes them between epochs)",
                                "set training.teacher_outputs to cache"))
    for i, t in enumerate(spec.teachers):
        wrong = t.input.for_numbers if text else t.input.for_text
        if wrong:
            kind = "texts" if text else f"{spec.data.format} data"
            problems.append(Problem(f"teachers[{i}].input.{wrong[0]}", f"teacher '{t.name}': input."
                                    f"{wrong[0]} is for {'images and tables' if text else 'text'}, and "
                                    f"the data is {kind}", f"remove input.{wrong[0]}"))
    return problems


def augment_problems(spec: PipelineSpec) -> list[Problem]:
    """Augmentation changes images [C, H, W]: refused for data whose format fixes another sample
    rank (a table row). Where the format does not fix it (npz, idx) the engine checks the
    samples it reads."""
    if spec.training.augment is None:
        return []
    data = spec.data
    shape = getattr(type(data), "sample_shapes", {}).get(getattr(data, "name", None))
    rank = len(shape) if shape else type(data).sample_rank
    if rank is None or rank == 3:
        return []
    what = "texts" if data.format == "text" else "a row of features" if rank == 1 else f"rank {rank}"
    return [Problem("training.augment", f"augmentation crops, flips and recolours images "
                    f"[C, H, W], and {data.format} data holds samples of another shape ({what})",
                    "remove training.augment, or use image data")]


def class_groups(spec: PipelineSpec) -> list[list[str]]:
    """The student's classes that teachers know, in groups linked by shared classes: two classes
    are in one group when a chain of teachers, each knowing two neighbours, joins them."""
    parent = {c: c for c in spec.classes}

    def root(c: str) -> str:
        while parent[c] != c:
            c = parent[c]
        return c

    for t in spec.teachers:
        known = [c for c in t.student_classes_of() if c in parent]
        for c in known[1:]:
            parent[root(c)] = root(known[0])
    known = {c for t in spec.teachers for c in t.student_classes_of() if c in parent}
    groups: dict[str, list[str]] = {}
    for c in spec.classes:
        if c in known:
            groups.setdefault(root(c), []).append(c)
    return list(groups.values())


def check_schema_version(data: dict) -> None:
    """Refuse a file from a newer version by name, before reading anything else of it."""
    version = data.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise InputError([Problem(
            "schema_version",
            f"this file was written by a newer Distill Studio (schema_version {version}); "
            f"this version reads schema_version {SCHEMA_VERSION}",
            "update Distill Studio to open it")])
    if isinstance(version, int) and version < 1:
        raise InputError([Problem("schema_version", f"schema_version {version} does not exist",
                                  f"set \"schema_version\": {SCHEMA_VERSION}")])


MAX_JSON_DEPTH = 100  # nesting of objects and lists in a spec or project (a real one has under 10)


def check_json_depth(data: Any, name: str = "the spec") -> None:
    """Refuse JSON nested deeper than MAX_JSON_DEPTH (checked without recursion), so that
    nothing that walks it later (validation, copying) runs out of stack."""
    level = [data]
    for _ in range(MAX_JSON_DEPTH + 1):
        level = [v for item in level if isinstance(item, (dict, list))
                 for v in (item.values() if isinstance(item, dict) else item)]
        if not level:
            return
    raise InputError([Problem("(file)", f"{name} is nested more than {MAX_JSON_DEPTH} levels deep",
                              "a spec is a few levels of objects and lists; the file is damaged "
                              "or not a spec")])


def loads_json(text: str, name: str) -> Any:
    """Parsed JSON text, or InputError: broken, or nested too deeply (Python's parser would
    raise RecursionError)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError([Problem(
            "(file)", f"{name} is not valid JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}", "fix the JSON syntax there (a missing comma or quote?)")]) from None
    except RecursionError:
        raise InputError([Problem("(file)", f"{name} is nested too deeply to read",
                                  "the file is damaged or not a spec")]) from None
    check_json_depth(data, name)
    return data


def parse_spec(data: Any, base_dir: Path | None = None) -> PipelineSpec:
    """Validate a spec given as parsed JSON. Raises InputError listing every problem."""
    if not isinstance(data, dict):
        raise InputError([Problem("(file)", "a spec must be a JSON object",
                                  "start from assets/examples/digits-experts.distill.json")])
    check_json_depth(data)
    check_schema_version(data)
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        problems = problems_from_validation_error(exc)
        seen = {(p.path, p.message) for p in problems}
        problems += [p for p in _partial_semantic_problems(data) if (p.path, p.message) not in seen]
        raise InputError(problems) from None
    if base_dir is not None:
        try:
            spec = _resolve_paths(spec, base_dir)
        except (ValueError, OSError) as exc:
            raise InputError([Problem("(paths)", f"a file path cannot be used: {exc}",
                                      "check the paths in the spec for odd characters")]) from None
    problems = semantic_problems(spec.classes, dict(enumerate(spec.teachers))) + strategy_problems(spec) \
        + training_problems(spec.training)
    if problems:
        raise InputError(problems)
    return spec


def training_problems(training: TrainingSpec) -> list[Problem]:
    """Settings of training that are valid alone but not together."""
    if training.accumulate > training.batch_size:
        return [Problem("training.accumulate", f"accumulate {training.accumulate} is more than batch_size "
                        f"{training.batch_size}: each batch is cut into `accumulate` parts of at least one "
                        "sample", f"set training.accumulate to at most {training.batch_size}, or raise "
                        "training.batch_size")]
    return []


def _partial_semantic_problems(data: dict) -> list[Problem]:
    """The class-mapping checks on the parts of an invalid spec that are valid on their own."""
    classes = data.get("classes")
    raw = data.get("teachers")
    if not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)
            and isinstance(raw, list)):
        return []
    teachers = {}
    for i, t in enumerate(raw):
        try:
            teachers[i] = TeacherSpec.model_validate(t)
        except ValidationError:
            continue
    return semantic_problems(classes, teachers)


def _resolve_paths(spec: PipelineSpec, base_dir: Path) -> PipelineSpec:
    def fix(p: Path | None) -> Path | None:
        if p is None:
            return None
        p = p.expanduser()
        return p if p.is_absolute() else (base_dir / p).resolve()

    data = spec.data.model_copy(update={k: fix(v) for k, v in spec.data if isinstance(v, Path)})
    teachers = [t.model_copy(update={"path": fix(t.path), "input": t.input.model_copy(
        update={"tokenizer": fix(t.input.tokenizer)})}) for t in spec.teachers]
    export = spec.export.model_copy(update={"folder": fix(spec.export.folder)}) if spec.export else None
    student = spec.student.model_copy(update={"init": spec.student.init.model_copy(
        update={"path": fix(spec.student.init.path)})})
    strategy = spec.strategy.model_copy(update={"previous_student": fix(spec.strategy.previous_student)})
    return spec.model_copy(update={"data": data, "teachers": teachers, "export": export,
                                   "student": student, "strategy": strategy})


def load_spec(path: str | Path) -> PipelineSpec:
    """Read and validate a spec file; relative paths resolve against its folder."""
    path = Path(path)
    try:
        text = read_regular_text(path, max_bytes=SPEC_MAX_BYTES)
    except FileNotFoundError:
        raise InputError([Problem("(file)", f"no spec file at {path}",
                                  "check the path; specs end in .distill.json")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError([Problem("(file)", f"cannot read {path}: {exc}",
                                  "check the file's permissions and that it is a text file")]) from None
    return parse_spec(loads_json(text, path.name), base_dir=path.resolve().parent)
