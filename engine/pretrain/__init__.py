"""Self-supervised pretraining of the student's trunk (student.init kind 'self_supervised'):
a phase of the run before distillation, on the training data with its labels unused.

    contrastive.py  SimCLR's NT-Xent loss and its projection head (Chen et al. 2020)
    views.py        two random views of each sample: images (crop, flip, jitter), tables (mask, noise)
    masked.py       masked prediction: hidden tokens (text, BERT) or patches' pixels (ViT, SimMIM)
    probe.py        a linear probe of the pretrained features on the labels there are
    phase.py        the pretraining loop: metrics, checkpoints, resume
"""
