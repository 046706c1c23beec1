"""Write N random encounters as JSONL: a mix of muscles, sides, groups, region terms,
unknown text, injection and dry needling, guidance and billed lines, payers and dates, and
the inputs of coverage: diagnoses, prior sessions, ABNs, providers, low back pain."""

from __future__ import annotations

import datetime as dt
import json
import random
import sys

MUSCLES = ["trapezius", "upper trap", "levator scapulae", "lev scap", "SCM", "QL", "glute med",
           "rhomboid major", "infraspinatus", "splenius capitis", "piriformis", "multifidus",
           "rhomboids", "scalenes", "paraspinals", "upper back", "trapz", "teres minor",
           "gluteus maximus", "masseter", "temporalis", "latissimus dorsi"]
SIDES = [None, "left", "right", "bilateral"]
PREFIX = ["", "", "", "right ", "left ", "rt ", "lt ", "b/l "]
PAYERS = ["cpt", "cpt", "medicare-noridian", "medicare-novitas", "medicare-wps", "medicare-cgs", "medicare-fcso",
          "bcbsa", "emblemhealth", "evicore"]
DIAGNOSES = ["M79.12", "M79.18", "M54.2", "M54.50", "G44.209", "M79.7", "O26.891"]
PROVIDERS = ["physician", "physician", "nurse_practitioner", "physical_therapist", "chiropractor"]
DRUGS = [[], ["lidocaine 1%"], ["lidocaine 1%", "triamcinolone 40 mg"], ["bupivacaine 0.25%"], ["normal saline"],
         ["PRP 3 mL"]]
CODES = ["20552", "20553", "20560", "20561", "76942", "77002", "96372", "99213"]


def encounter(rng: random.Random, i: int) -> dict:
    procs = []
    for _ in range(rng.randint(1, 5)):
        side = rng.choice(SIDES)
        proc = {"muscle": (rng.choice(PREFIX) if side is None else "") + rng.choice(MUSCLES),
                "injectate": rng.choice(DRUGS)}
        if side:
            proc["side"] = side
        procs.append(proc)
    enc: dict[str, object] = {"id": f"bench-{i:06d}",
           "date": f"{rng.choice([2019, 2021, 2023, 2024, 2025])}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
           "payer": rng.choice(PAYERS), "procedures": procs}
    if rng.random() < 0.3:
        enc["guidance"] = [{"modality": rng.choice(["ultrasound", "fluoroscopy", "ct", "mri"]),
                            "necessity": rng.choice([None, "deep muscle near pleura"]),
                            "images_recorded": rng.random() < 0.7}]
    if rng.random() < 0.5:
        enc["billed"] = [{"code": rng.choice(CODES), "units": rng.choice([1, 1, 1, 2]),
                          "modifiers": rng.choice([[], [], ["59"], ["XS"], ["25"]])}
                         for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.6:
        enc["diagnoses"] = rng.sample(DIAGNOSES, rng.randint(1, 2))
    if rng.random() < 0.4:
        day = dt.date.fromisoformat(str(enc["date"]))
        enc["history"] = [{"date": (day - dt.timedelta(days=rng.randint(0, 400))).isoformat(),
                           "codes": [rng.choice(["20552", "20553", "20560", "97810"])],
                           **({"muscles": rng.choice(MUSCLES)} if rng.random() < 0.7 else {})}
                          for _ in range(rng.randint(1, 5))]
    if rng.random() < 0.2:
        enc["abn"] = True
    if rng.random() < 0.3:
        enc["provider"] = {"type": rng.choice(PROVIDERS), "acupuncture_license": rng.random() < 0.3}
    if rng.random() < 0.3:
        enc["low_back_pain_weeks"] = rng.randint(1, 40)
    return enc


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 2026
    rng = random.Random(seed)
    for i in range(n):
        print(json.dumps(encounter(rng, i)))


if __name__ == "__main__":
    main()
