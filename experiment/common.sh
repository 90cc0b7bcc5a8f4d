# experiment/common.sh - shell helpers that experiment/run.sh and experiment/demo.sh
# share (sourced by both; defines functions only).

# field NAME: the value of a number field of a one-line JSON object on standard input
field() { sed -n "s/.*\"$1\": \\([^,}]*\\).*/\\1/p"; }

# scored_samples DPO SAMPLES REWARDS: print "prompt|completion|reward" for every row
# of SAMPLES (the output of dpo sample), each scored by VADER; the rewards alone
# are written to REWARDS. (The corpus's texts hold no "|" and no escaped quotes.)
scored_samples() {
    "$1" sentiment --jsonl "$2" | field reward > "$3"
    sed 's/^{"prompt": "\(.*\)", "completion": "\(.*\)", "finish".*/\1|\2/' "$2" | paste -d '|' - "$3"
}
