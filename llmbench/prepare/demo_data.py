"""The embedded default's data: rows the team generates for the demo tasks, never copied.

`make demo` fine-tunes a real model on three tasks, so each needs a few hundred rows to learn
from and enough held-out rows that its score means something. These rows come from small
generators written here, from word lists and sentence frames of our own. Each task's rows are
written in that task's upstream format into `datasets/<task>/demo/`, so `llmbench prepare
--source datasets/<task>/demo` reads them with the task's own code, as it reads real data.

The eval rows test something the train rows do not give away: sentiment words, restaurants,
landmarks, people, organisations and places in the eval rows are drawn from pools the train rows
never use, so an adapter has to carry what it learned over to unseen words rather than recall
whole rows.

The files are committed; `python -m llmbench.prepare.demo_data` regenerates them byte for byte (a
test
holds them to that).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from llmbench.paths import DATASETS_DIR, atomic_write_text

DEMO_DIR = "demo"
SEED = 2024
TRAIN_ROWS, EVAL_ROWS = 240, 60


def _pools(train: list[str], held_out: list[str]) -> dict[str, list[str]]:
    return {"train": train, "eval": held_out}


# --- glue_sst2: movie-review sentences, 1 positive / 0 negative --------------------------------

SUBJECTS = [
    "the film",
    "this movie",
    "the plot",
    "the screenplay",
    "the lead performance",
    "the supporting cast",
    "the soundtrack",
    "the cinematography",
    "the dialogue",
    "the ending",
    "the second half",
    "the opening scene",
    "the script",
    "the editing",
    "the villain",
    "the story",
    "the humor",
    "the visual effects",
    "the pacing",
    "the final act",
]
ADJECTIVES = {
    1: _pools(
        [
            "wonderful",
            "moving",
            "charming",
            "brilliant",
            "delightful",
            "gripping",
            "heartfelt",
            "funny",
            "beautiful",
            "clever",
            "thrilling",
            "warm",
            "stunning",
            "inventive",
            "touching",
            "memorable",
            "superb",
            "engaging",
            "lovely",
            "powerful",
        ],
        [
            "masterful",
            "enchanting",
            "exhilarating",
            "captivating",
            "dazzling",
            "witty",
            "tender",
            "glorious",
            "riveting",
            "joyous",
        ],
    ),
    0: _pools(
        [
            "dull",
            "boring",
            "clumsy",
            "tedious",
            "awful",
            "bland",
            "confusing",
            "lifeless",
            "predictable",
            "forgettable",
            "messy",
            "tiresome",
            "shallow",
            "sloppy",
            "flat",
            "painful",
            "silly",
            "stale",
            "weak",
            "annoying",
        ],
        [
            "dreadful",
            "insufferable",
            "incoherent",
            "vapid",
            "grating",
            "plodding",
            "lackluster",
            "abysmal",
            "listless",
            "turgid",
        ],
    ),
}
ADVERBS = ["", "truly ", "rather ", "consistently ", "surprisingly ", "utterly ", "quite "]
SENTIMENT_FRAMES = [
    "{subject} is {adverb}{adj} .",
    "{subject} feels {adj} from start to finish .",
    "i found {subject} {adj} and {adj2} .",
    "{subject} is {other} at first , but it ends up {adj} .",
    "{subject} is not {other} ; it is {adverb}{adj} .",
    "a {adj} , {adj2} film , and {subject} is the reason why .",
    "by the end , {subject} had proved {adverb}{adj} .",
    "even with a modest budget , {subject} comes across as {adj} .",
]


def sst2_rows(rng: random.Random, part: str, count: int) -> list[dict]:
    rows, seen = [], set()
    while len(rows) < count:
        label = len(rows) % 2  # balanced
        adj, adj2 = rng.sample(ADJECTIVES[label][part], 2)
        sentence = rng.choice(SENTIMENT_FRAMES).format(
            subject=rng.choice(SUBJECTS),
            adverb=rng.choice(ADVERBS),
            adj=adj,
            adj2=adj2,
            other=rng.choice(ADJECTIVES[1 - label][part]),
        )
        if sentence not in seen:
            seen.add(sentence)
            rows.append({"sentence": sentence, "label": label})
    rng.shuffle(rows)
    return [{**row, "idx": index} for index, row in enumerate(rows)]


# --- e2e_nlg: a restaurant's meaning representation and a description of it ------------------

RESTAURANTS = _pools(
    [
        "The Copper Pot",
        "Blue Heron",
        "The Lantern Room",
        "Saffron House",
        "The Old Mill",
        "Green Olive",
        "The Quay",
        "Marigold",
        "The Red Fox",
        "Harbour Lights",
        "The Orchard",
        "Silver Spoon",
        "The Wheatsheaf",
        "Cedar Grill",
        "The Pavilion",
        "Juniper",
    ],
    [
        "The Kingfisher",
        "Amber Table",
        "The Tollgate",
        "Rosewood",
        "The Boathouse",
        "Little Fig",
        "The Granary",
        "Sable",
    ],
)
LANDMARKS = _pools(
    [
        "the Town Hall",
        "the Market Cross",
        "the Clock Tower",
        "the Museum",
        "the Stone Bridge",
        "the Railway Station",
        "the Cathedral",
        "the Old Library",
    ],
    ["the Lighthouse", "the Botanic Garden", "the Bus Depot", "the Concert Hall"],
)
EAT_TYPES = ["pub", "restaurant", "coffee shop"]
FOODS = ["French", "Italian", "Chinese", "Indian", "Japanese", "English", "Spanish"]
PRICES = {"cheap": "cheap", "moderate": "moderately priced", "high": "expensive"}
RATINGS = ["low", "average", "high"]
AREAS = {"riverside": "by the riverside", "city centre": "in the city centre"}


def e2e_row(rng: random.Random, part: str) -> dict:
    """One meaning representation (always name, eatType, food, area; each other attribute
    about half the time) and a description that states exactly its attributes."""
    name, eat, food = rng.choice(RESTAURANTS[part]), rng.choice(EAT_TYPES), rng.choice(FOODS)
    area = rng.choice(sorted(AREAS))
    price = rng.choice(sorted(PRICES)) if rng.random() < 0.5 else None
    rating = rng.choice(RATINGS) if rng.random() < 0.5 else None
    family = rng.choice(["yes", "no"]) if rng.random() < 0.5 else None
    near = rng.choice(LANDMARKS[part]) if rng.random() < 0.5 else None
    mr = [f"name[{name}]", f"eatType[{eat}]", f"food[{food}]"]
    mr += [f"priceRange[{price}]"] if price else []
    mr += [f"customer rating[{rating}]"] if rating else []
    mr += [f"area[{area}]"]
    mr += [f"familyFriendly[{family}]"] if family else []
    mr += [f"near[{near}]"] if near else []
    kind = f"{PRICES[price]} {food} {eat}" if price else f"{food} {eat}"
    where = AREAS[area] + (f" near {near}" if near else "")
    first = rng.choice(
        [
            f"{name} is {_a(kind)} {where}.",
            f"{where[0].upper()}{where[1:]}, {name} is {_a(kind)}.",
            f"There is {_a(kind)} called {name} {where}.",
        ]
    )
    rest = []
    if rating:
        rest.append(f"It has {_a(rating)} customer rating.")
    if family:
        rest.append("It is family friendly." if family == "yes" else "It is not family friendly.")
    return {"mr": ", ".join(mr), "ref": " ".join([first, *rest])}


def _a(phrase: str) -> str:
    return f"{'an' if phrase[0].lower() in 'aeiou' else 'a'} {phrase}"


def e2e_rows(rng: random.Random, part: str, count: int, seen: set[str]) -> list[dict]:
    rows = []
    while len(rows) < count:
        row = e2e_row(rng, part)
        if row["mr"] not in seen:
            seen.add(row["mr"])
            rows.append(row)
    return rows


def _csv(rows: list[dict]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["mr", "ref"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


# --- conllpp: CoNLL-2003 style sentences with PER, ORG, LOC and MISC tags ----------------------

FIRST_NAMES = _pools(
    [
        "Anna",
        "Lars",
        "Maria",
        "Tomasz",
        "Sofia",
        "Kenji",
        "Amara",
        "Pedro",
        "Ingrid",
        "Omar",
        "Lucia",
        "Dmitri",
        "Fatima",
        "Hugo",
        "Mei",
        "Rafael",
        "Elif",
        "Jonas",
        "Chloe",
        "Kwame",
    ],
    ["Bruno", "Greta", "Yusuf", "Noemi", "Aleksander", "Priya", "Mateo", "Signe"],
)
SURNAMES = _pools(
    [
        "Ekdahl",
        "Novak",
        "Moreau",
        "Okafor",
        "Lindqvist",
        "Tanaka",
        "Rossi",
        "Haddad",
        "Brennan",
        "Kowalczyk",
        "Silva",
        "Vogel",
        "Mensah",
        "Duarte",
        "Petrov",
        "Yilmaz",
        "Ferreira",
        "Nakamura",
        "Schulz",
        "Byrne",
    ],
    ["Halvorsen", "Zielinski", "Abara", "Castellano", "Virtanen", "Osei", "Marchetti", "Koval"],
)
ORGANIZATIONS = _pools(
    [
        "Valdor Motors",
        "Kestrel Airlines",
        "Brightwater Bank",
        "Ostend Shipping",
        "Polar Foods",
        "Tidewell Energy",
        "Marlow United",
        "Redcliff Rovers",
        "Ironvale Mining",
        "Sunmark Telecom",
        "Harbor Insurance",
        "Copperline",
        "Northgate Steel",
        "Albion Press",
    ],
    [
        "Granton Athletic",
        "Silverfern Group",
        "Orbis Rail",
        "Calder Chemicals",
        "Westmark",
        "Bluepeak Capital",
    ],
)
LOCATIONS = _pools(
    [
        "Rotterdam",
        "Lisbon",
        "Nairobi",
        "Osaka",
        "Krakow",
        "Lyon",
        "Toronto",
        "Valencia",
        "Gdansk",
        "Accra",
        "Porto",
        "Bergen",
        "Seville",
        "Leeds",
        "Tampere",
        "Brno",
    ],
    ["Antwerp", "Dakar", "Sapporo", "Ljubljana", "Genoa", "Winnipeg", "Aarhus", "Cork"],
)
MISCELLANEOUS = _pools(
    [
        "Dutch",
        "Swedish",
        "Brazilian",
        "Japanese",
        "Polish",
        "Kenyan",
        "French",
        "German",
        "World Cup",
        "Olympic",
        "European Championship",
    ],
    ["Norwegian", "Chilean", "Ghanaian", "Asian Games", "Davis Cup"],
)
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
# Slots in capitals; everything else is an untagged token.
NER_FRAMES = [
    "PER signed for ORG on DAY .",
    "ORG opened a new office in LOC .",
    "NAT midfielder PER scored twice against ORG .",
    "Shares in ORG fell 4 percent in LOC on DAY .",
    "PER will travel to LOC for the EVENT .",
    "A court in LOC fined ORG 2 million euros .",
    "PER , a spokesman for ORG , said talks in LOC would resume .",
    "Police in LOC said nobody was hurt .",
    "Rain delayed play on the second day .",
    "PER and PER met in LOC on DAY .",
    "ORG beat ORG 3 - 1 in LOC .",
    "The NAT government named PER as its new trade envoy .",
    "PER won the EVENT title in LOC last year .",
    "ORG said profits rose sharply in the third quarter .",
]
SLOT_TYPES = {"PER": "PER", "ORG": "ORG", "LOC": "LOC", "NAT": "MISC", "EVENT": "MISC"}
NATIONALITIES = 8  # the first entries of each MISCELLANEOUS pool are nationalities


def _slot_text(rng, slot: str, part: str) -> str:
    if slot == "PER":
        return f"{rng.choice(FIRST_NAMES[part])} {rng.choice(SURNAMES[part])}"
    if slot == "ORG":
        return rng.choice(ORGANIZATIONS[part])
    if slot == "LOC":
        return rng.choice(LOCATIONS[part])
    pool = MISCELLANEOUS[part]
    split = NATIONALITIES if part == "train" else 3
    return rng.choice(pool[:split] if slot == "NAT" else pool[split:])


def ner_sentence(rng: random.Random, part: str) -> list[tuple[str, str]]:
    """(token, tag) pairs of one sentence, tagged in IOB2."""
    tagged = []
    for word in rng.choice(NER_FRAMES).split():
        if word == "DAY":
            tagged.append((rng.choice(DAYS), "O"))
        elif word in SLOT_TYPES:
            tokens = _slot_text(rng, word, part).split()
            kind = SLOT_TYPES[word]
            tagged += [(t, f"{'B' if i == 0 else 'I'}-{kind}") for i, t in enumerate(tokens)]
        else:
            tagged.append((word, "O"))
    return tagged


def conll_text(sentences: list[list[tuple[str, str]]]) -> str:
    """The CoNLL-2003 layout; this data has no part-of-speech or chunk annotation, so those
    columns hold `-`."""
    blocks = ["-DOCSTART- -X- -X- O\n"]
    blocks += ["".join(f"{token} - - {tag}\n" for token, tag in s) for s in sentences]
    return "\n".join(blocks)


def conllpp_sentences(
    rng: random.Random, part: str, count: int, seen: set[str]
) -> list[list[tuple[str, str]]]:
    """`count` new sentences; `seen` (updated) holds those already written, in any split."""
    sentences = []
    while len(sentences) < count:
        sentence = ner_sentence(rng, part)
        key = " ".join(token for token, _ in sentence)
        if key not in seen:
            seen.add(key)
            sentences.append(sentence)
    return sentences


# --- writing ------------------------------------------------------------------------------------


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def demo_files() -> dict[str, dict[str, str]]:
    """task -> {file name: content} of every demo file, made from SEED."""
    rng = random.Random(SEED)
    seen: set[str] = set()
    return {
        "glue_sst2": {
            "train.jsonl": _jsonl(sst2_rows(rng, "train", TRAIN_ROWS)),
            "validation.jsonl": _jsonl(sst2_rows(rng, "eval", EVAL_ROWS)),
        },
        # e2e_nlg and conllpp are scored on their test split; a small dev split is enough
        "e2e_nlg": {
            "trainset.csv": _csv(e2e_rows(rng, "train", TRAIN_ROWS, seen)),
            "devset.csv": _csv(e2e_rows(rng, "eval", 12, seen)),
            "testset_w_refs.csv": _csv(e2e_rows(rng, "eval", EVAL_ROWS, seen)),
        },
        "conllpp": {
            "conllpp_train.txt": conll_text(conllpp_sentences(rng, "train", TRAIN_ROWS, seen)),
            "conllpp_dev.txt": conll_text(conllpp_sentences(rng, "eval", 12, seen)),
            "conllpp_test.txt": conll_text(conllpp_sentences(rng, "eval", EVAL_ROWS, seen)),
        },
    }


DEMO_TASKS = ("glue_sst2", "e2e_nlg", "conllpp")


def demo_source(task: str, datasets_dir: Path = DATASETS_DIR) -> Path:
    """The folder of a demo task's generated rows, in the task's upstream format."""
    return Path(datasets_dir) / task / DEMO_DIR


def write_demo_files(datasets_dir: Path = DATASETS_DIR) -> None:
    """Write every demo file under `datasets_dir` (the project's datasets/ by default)."""
    for task, contents in demo_files().items():
        for name, text in contents.items():
            atomic_write_text(demo_source(task, datasets_dir) / name, text)


if __name__ == "__main__":
    write_demo_files()
