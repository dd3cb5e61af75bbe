"""`ardm train-gate`: train the overwrite gate of a frozen denoiser (ardm.generation.gate.training)."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train-gate", help="train the overwrite gate of a frozen diffusion denoiser",
        description="Train a Dynamic Overwrite Gate (SPEC §7) for a frozen bidirectional denoiser on "
                    "teacher-anchored drafts of its training corpus. The gate (gate.safetensors + "
                    "gate.json + metrics.jsonl) goes to --out, by default the gate/ folder inside the "
                    "checkpoint folder, where `ardm sample --sampler gate` finds it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint folder or run directory (bidirectional)")
    p.add_argument("--data", help="corpus (default: the one the checkpoint was trained on)")
    p.add_argument("--out", help="gate folder (default: CHECKPOINT/gate)")
    p.add_argument("--kind", default="mlp", help="mlp (learned) or linear")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps")
    p.add_argument("--batch-size", type=int, default=32, help="drafts per step")
    p.add_argument("--lr", type=float, default=0.0, help="AdamW learning rate (0: 1e-3 linear, 3e-4 mlp)")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds the gate's initialisation, the training windows and drafts, and the "
                        "long-horizon stage's rollouts")
    p.add_argument("--sampler-steps", type=int, default=64,
                   help="K of the drafts' gate sampler (use the --steps you will sample with)")
    p.add_argument("--rollout", type=int, default=4, help="J: drafts run 1..J gate-sampler steps")
    p.add_argument("--lambda-aux", type=float, default=1.0,
                   help="weight of L_aux, the class-weighted BCE of p against 'this token is wrong' "
                        "(SPEC §7.3)")
    p.add_argument("--lambda-step", type=float, default=1.0,
                   help="weight of L_step, minus the expected share of correct tokens after one step")
    p.add_argument("--lambda-sparse", type=float, default=0.05,
                   help="weight of L_sparse, the mean overwrite mask (a price on every overwrite)")
    p.add_argument("--lambda-tv", type=float, default=0.05,
                   help="weight of L_TV, the mean |p_k - p_(k-1)| between consecutive steps (smooth "
                        "decisions)")
    p.add_argument("--mask", default="relaxed",
                   help="mask in the sparsity term: relaxed (Gumbel-sigmoid), straight_through or expected")
    p.add_argument("--eval-interval", type=int, default=50, help="validation every N steps")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="gate sampler option of the drafts, stored as the gate's default (prior, alpha, "
                        "delta, combine, mask, theta, fill, mode, eta, reveal, y_tilde, margin)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--resume", action="store_true",
                   help="continue the gate run interrupted in OUT.partial/ (same options), exactly")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group(
        "long-horizon stage", "after the supervised stage (or on --from-gate), fine-tune the gate by a "
        "policy gradient whose reward is the final sample's log-likelihood per token under --reference, "
        "or, for a Sudoku denoiser with --puzzles, whether the final grid is solved "
        "(ardm.generation.gate.policy); needs Bernoulli decisions (mode=remdm, or mask=bernoulli)")
    g.add_argument("--policy-steps", type=int, default=0, help="policy-gradient updates (0: no such stage)")
    g.add_argument("--reference", help="causal (AR) checkpoint that scores the final samples")
    g.add_argument("--from-gate", metavar="DIR",
                   help="skip the supervised stage: fine-tune this trained gate")
    g.add_argument("--policy-batch", type=int, default=16,
                   help="rollouts per update (leave-one-out baseline)")
    g.add_argument("--policy-length", type=int, default=128, help="generated tokens per rollout")
    g.add_argument("--policy-lr", type=float, default=1e-4, help="AdamW learning rate of the stage")
    g.add_argument("--policy-temperature", type=float, default=1.0,
                   help="sampling temperature of the rollouts (use the one you will sample with; 0: argmax)")
    g.add_argument("--entropy-weight", type=float, default=0.0,
                   help="reward += this x the sample's unigram entropy (nats)")
    g.add_argument("--prompt", default="\n", help="the rollouts' prompt (as in `ardm compare`)")
    g.add_argument("--puzzles", metavar="FILE",
                   help="Sudoku: puzzles to solve (a file `ardm sudoku generate` writes; not the ones you "
                        "bench on); the first --policy-batch validate, the reward is exact correctness")
    g.add_argument("--policy-group", type=int, default=0,
                   help="rollouts per prompt or puzzle sharing a leave-one-out baseline (0: the whole batch)")


def run(args) -> int:
    from ardm.errors import ArdmError
    from ardm.generation.gate.training import GateTrainConfig, train_gate
    from ardm.generation.registry import parse_options

    if (args.from_gate or args.reference) and args.policy_steps < 1:
        raise ArdmError("--from-gate and --reference belong to the long-horizon stage: add --policy-steps N")
    if args.policy_steps and not (args.reference or args.puzzles):
        raise ArdmError("--policy-steps needs --reference AR_CHECKPOINT (it scores the final samples) "
                        "or, for Sudoku, --puzzles FILE")
    if args.reference and args.puzzles:
        raise ArdmError("--reference scores text, --puzzles Sudoku grids: give one of them")
    if args.from_gate:
        return _policy_stage(args, args.from_gate)

    cfg = GateTrainConfig(kind=args.kind, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                          seed=args.seed, sampler_steps=args.sampler_steps, rollout=args.rollout,
                          lambda_aux=args.lambda_aux,
                          lambda_step=args.lambda_step, lambda_sparse=args.lambda_sparse,
                          lambda_tv=args.lambda_tv, mask=args.mask, eval_interval=args.eval_interval,
                          sampler=parse_options("gate", args.set))
    result = train_gate(args.checkpoint, cfg, out=args.out, data=args.data, device=args.device,
                        resume=args.resume,
                        progress=not args.no_progress)
    keys = ("L_aux", "L_step", "mean_p", "overwrite_rate", "precision", "recall")
    for when in ("initial", "final"):
        print(f"{when:8s} " + "  ".join(f"{k} {result[when][k]:.4f}" for k in keys))
    print(f"gate ({result['kind']}, {result['steps']} steps, {result['elapsed_s']:.1f} s): {result['out']}")
    return _policy_stage(args, result["out"]) if args.policy_steps else 0


def _policy_stage(args, gate: str) -> int:
    import torch

    from ardm.core.checkpoint import load_tokenizer, read_checkpoint
    from ardm.core.runtime import resolve_device
    from ardm.evaluation.rewards import reference_reward
    from ardm.generation.gate.policy import PolicyConfig, finetune_gate
    from ardm.generation.gate.store import GATE_DIR

    cfg = PolicyConfig(steps=args.policy_steps, batch_size=args.policy_batch,
                       length=81 if args.puzzles else args.policy_length, group=args.policy_group,
                       val_batch=args.policy_batch if args.puzzles else 32,
                       sampler_steps=args.sampler_steps, lr=args.policy_lr, seed=args.seed,
                       temperature=args.policy_temperature)
    ckpt = read_checkpoint(args.checkpoint, verify=False)
    tok = load_tokenizer(ckpt)
    device = str(resolve_device(args.device))  # the same device for the denoiser and the reference
    givens, prompt_text = None, args.prompt
    if args.puzzles:
        givens, reward = _sudoku_episodes(args, tok, cfg)
        prompt_text = "\n"  # a Sudoku record starts with a newline
    else:
        reward = reference_reward(args.reference, tok, args.prompt, entropy_weight=args.entropy_weight,
                                  device=device)
    out = args.out or str(ckpt.path / GATE_DIR)
    prompt = torch.tensor(tok.encode(prompt_text), dtype=torch.long)
    result = finetune_gate(args.checkpoint, gate, reward, cfg, out=out, prompt=prompt, givens=givens,
                           device=device, progress=not args.no_progress)
    for when in ("initial", "final"):
        print(f"policy {when:8s} " + "  ".join(f"{k} {v:.4f}" for k, v in result[when].items()))
    print(f"gate (policy stage, {cfg.steps} updates, {result['elapsed_s']:.1f} s): {result['out']}")
    return 0


def _sudoku_episodes(args, tok, cfg):
    from ardm.data.sudoku_puzzles import read_puzzles
    from ardm.errors import ArdmError
    from ardm.tasks.sudoku.gate_policy import sudoku_episodes

    entries, errors = read_puzzles(args.puzzles)
    if errors:
        raise ArdmError(f"{args.puzzles}: line {errors[0].line}: {errors[0].message}")
    return sudoku_episodes(tok, [e.puzzle for e in entries], cfg.group, held_out=cfg.val_batch)
