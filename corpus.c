/* corpus.c - owns the synthetic movie-review corpus of `dpo corpus`: the word
 * tables and sentence templates of a small grammar, the check of every word
 * against VADER's lexicon, the generation of reviews from a seed, and the
 * three corpus files.
 *
 * It must never draw a word with floating point (every choice is an integer
 * draw from util_rng_u64, so a seed gives the same bytes on every machine),
 * never use a word whose VADER role the check has not confirmed, never print,
 * and never write anything but DIR/train.txt, DIR/heldout.txt and
 * DIR/ratings.tsv, each atomically.
 *
 * Why it exists: the DPO paper's sentiment experiment used IMDb reviews, which
 * cannot be downloaded here. This grammar makes reviews whose sentiment VADER
 * (the experiment's reward) reads exactly as the grammar intends, so the
 * experiment can measure how far training steers it. Any plain-text corpus,
 * one text per line, can take its place.
 *
 * The grammar, per review:
 *   rating r uniform in 1..10 (hidden; written to ratings.tsv)
 *   sentences until the review holds T words, T uniform in
 *     [min_words, max_words - S + 1] (S: the longest sentence), so a review
 *     is whole sentences and has min_words..max_words words;
 *   each sentence a neutral plot sentence with probability 1/3 (names,
 *     places, things: no VADER valence), else an opinion sentence, positive
 *     with probability p(r) = (2r - 1) / 20 (0.05 for r = 1 .. 0.95 for
 *     r = 10; p(11 - r) = 1 - p(r), so positive and negative are symmetric),
 *     negative otherwise. The last sentence is an opinion one when no earlier
 *     one was, so every review carries its rating.
 *   an opinion sentence of sign s is one of
 *     plain     (65%) "The acting was brilliant."   a word of sign s, a booster
 *                     ("very", "really", ...) before it in 30% of them; half
 *                     of them in a shared phrasing, half in one that leans to
 *                     sign s ("The plot turned out clever.", "The plot came
 *                     across as dull."): without some local difference between
 *                     the signs, a small GPT-2 sits on a long plateau before
 *                     it learns that one review's words share a sign
 *     negated   (15%) "The plot wasn't dull."       a word of sign -s after a
 *                     negation at most three words before it (VADER flips it)
 *     contrast  (20%) "The score was dull, but the cast was superb."
 *                     a word of sign -s, "but", a word of sign s: VADER weighs
 *                     words before "but" 0.5 and after it 1.5, and the tables
 *                     keep max |valence| < 3 min |valence|, so s wins
 *   and ends with "!" instead of "." in 1 of 40.
 * The opinion tables hold 50 positive and 50 negative adjectives with VADER
 * valences of like sizes (means 2.21 and -2.18, |valence| 1.3..3.1), so that
 * a review's mean reward over all ratings is near 0.5 (0.503 for the default
 * 30,000 reviews). "This movie was X." is a template so that a prompt in
 * those words (the experiment's gate) is made of the corpus's own tokens.
 *
 * The vocabulary is small on purpose (620 distinct words in 30,000 reviews):
 * byte-level BPE needs about 2.8 merges per word (its forms " word", "Word",
 * " Word" and the pieces on the way), so `dpo tokenizer-train --vocab-size
 * 2000` makes nearly every word one token (2031 makes every one).
 */
#include "corpus.h"

#include <stdlib.h>
#include <string.h>

/* ======================================================================== */
/* word tables                                                               */
/* ======================================================================== */

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const corpus_opinion_word opinion_words[] = {
    /* positive (VADER valence 1.3 .. 3.1) */
    {"brilliant", 1}, {"wonderful", 1}, {"excellent", 1}, {"superb", 1}, {"beautiful", 1},
    {"lovely", 1}, {"charming", 1}, {"delightful", 1}, {"enjoyable", 1}, {"engaging", 1},
    {"clever", 1}, {"fresh", 1}, {"great", 1}, {"good", 1}, {"nice", 1},
    {"amazing", 1}, {"fantastic", 1}, {"impressive", 1}, {"inspiring", 1}, {"powerful", 1},
    {"remarkable", 1}, {"strong", 1}, {"thrilling", 1}, {"elegant", 1}, {"stunning", 1},
    {"perfect", 1}, {"pleasant", 1}, {"smart", 1}, {"sweet", 1}, {"terrific", 1},
    {"outstanding", 1}, {"magnificent", 1}, {"splendid", 1}, {"exciting", 1}, {"entertaining", 1},
    {"funny", 1}, {"hilarious", 1}, {"fun", 1}, {"fascinating", 1}, {"heartwarming", 1},
    {"satisfying", 1}, {"intelligent", 1}, {"interesting", 1}, {"lively", 1}, {"thoughtful", 1},
    {"creative", 1}, {"flawless", 1}, {"bold", 1}, {"playful", 1}, {"sincere", 1},
    /* negative (VADER valence -1.3 .. -3.1) */
    {"awful", -1}, {"terrible", -1}, {"dull", -1}, {"boring", -1}, {"bad", -1},
    {"horrible", -1}, {"dreadful", -1}, {"weak", -1}, {"poor", -1}, {"stupid", -1},
    {"ugly", -1}, {"lame", -1}, {"messy", -1}, {"pathetic", -1}, {"painful", -1},
    {"disappointing", -1}, {"annoying", -1}, {"worthless", -1}, {"dumb", -1}, {"forced", -1},
    {"sluggish", -1}, {"miserable", -1}, {"horrid", -1}, {"nasty", -1}, {"lousy", -1},
    {"unpleasant", -1}, {"hopeless", -1}, {"useless", -1}, {"irritating", -1}, {"frustrating", -1},
    {"depressing", -1}, {"grim", -1}, {"dismal", -1}, {"tired", -1}, {"pitiful", -1},
    {"crude", -1}, {"idiotic", -1}, {"insipid", -1}, {"joyless", -1}, {"dire", -1},
    {"dishonest", -1}, {"embarrassing", -1}, {"fake", -1}, {"horrendous", -1}, {"gross", -1},
    {"rotten", -1}, {"vile", -1}, {"agonizing", -1}, {"troubling", -1}, {"inferior", -1},
};

/* The modifiers opinion sentences use on purpose, and what each must do. */
static const corpus_modifier modifiers[] = {
    {"not", CORPUS_NEGATION},       {"never", CORPUS_NEGATION},   {"wasn't", CORPUS_NEGATION},
    {"isn't", CORPUS_NEGATION},     {"but", CORPUS_CONTRAST},     {"very", CORPUS_BOOSTER},
    {"really", CORPUS_BOOSTER},     {"extremely", CORPUS_BOOSTER}, {"incredibly", CORPUS_BOOSTER},
    {"particularly", CORPUS_BOOSTER},      {"remarkably", CORPUS_BOOSTER}, {"utterly", CORPUS_BOOSTER},
    {"thoroughly", CORPUS_BOOSTER}, {"quite", CORPUS_BOOSTER},    {"deeply", CORPUS_BOOSTER},
    {"totally", CORPUS_BOOSTER},    {"absolutely", CORPUS_BOOSTER},
};

/* The boosters a {B} slot draws from (each must be a CORPUS_BOOSTER above). */
static const char *const boosters[] = {
    "very", "really", "extremely", "incredibly", "particularly", "remarkably",
    "utterly", "thoroughly", "quite", "deeply", "totally", "absolutely",
};

/* ---- neutral tables: every word must be invisible to VADER --------------- */

static const char *const names_female[] = {
    "Anna",  "Maria",  "Clara",  "Elena", "Sofia",  "Laura",  "Julia",  "Emma",   "Nora",   "Alice",
    "Helen", "Irene",  "Lucia",  "Marta", "Paula",  "Rosa",   "Sara",   "Vera",   "Ada",    "Ines",
    "Lena",  "Mila",   "Nina",   "Olga",  "Rita",   "Tessa",  "Yara",   "Zoe",    "Hanna",  "Ida",
    "Eva",   "Greta",  "Ingrid", "Karin", "Leila",  "Mira",   "Naomi",  "Petra",  "Ruth",   "Sonia",
    "Tara",  "Wanda",  "Agnes",  "Bianca", "Carmen", "Dora",  "Edith",  "Fiona",  "Iris",   "Jana",
    "Kira",  "Linda",  "Magda",  "Nadia", "Pia",    "Renata", "Selma",  "Thea",   "Valeria", "Ophelia",
};
static const char *const names_male[] = {
    "Peter", "David",  "Paul",   "Marco", "Tomas",  "Lucas",  "Felix",  "Hugo",   "Oscar",  "Leon",
    "Martin", "Simon", "Adam",   "Daniel", "Elias", "Henry",  "Ivan",   "Jonas",  "Karl",   "Louis",
    "Max",   "Nils",   "Otto",   "Pablo", "Rafael", "Samuel", "Theo",   "Anton",  "Bruno",  "Carlos",
    "Diego", "Emil",   "Fabio",  "Gustav", "Hector", "Igor",  "Jakob",  "Kenji",  "Lars",   "Milan",
    "Nico",  "Omar",   "Pedro",  "Rolf",  "Stefan", "Tobias", "Walter", "Arthur", "Boris",  "Erik",
    "Cyril", "Dmitri", "Farid",  "Georg", "Harold", "Isaac",  "Julian", "Viktor", "Hans",   "Luca",
};
static const char *const places[] = {
    "Lisbon",   "Porto",    "Madrid",   "Seville",  "Paris",     "Lyon",     "Marseille", "Rome",
    "Naples",   "Venice",   "Vienna",   "Prague",   "Berlin",    "Hamburg",  "Munich",    "Zurich",
    "Geneva",   "Oslo",     "Bergen",   "Stockholm", "Helsinki", "Copenhagen", "Dublin",  "Glasgow",
    "Edinburgh", "London",  "Bristol",  "Brussels", "Amsterdam", "Riga",   "Krakow",    "Budapest",
    "Athens",   "Istanbul", "Cairo",    "Tunis",    "Lagos",     "Nairobi",  "Tokyo",     "Osaka",
    "Seoul",    "Shanghai", "Manila",   "Sydney",   "Auckland",  "Chicago",  "Boston",    "Denver",
    "Seattle",  "Montreal", "Toronto",  "Havana",   "Lima",      "Quito",    "Santiago",  "Bogota",
    "Tangier",  "Beirut",   "Delhi",    "Mumbai",   "Hanoi",     "Bangkok",  "Jakarta",   "Marrakesh",
    "Vilnius",  "Tallinn",  "Valencia", "Florence", "Turin",     "Genoa",    "Palermo",   "Dakar",
    "Accra",    "Cusco",
};
static const char *const relatives[] = {
    "brother", "sister", "mother",   "father", "uncle", "aunt",   "cousin",     "son",
    "daughter", "husband", "wife",   "niece",  "nephew", "neighbour", "grandmother", "grandfather",
};
static const char *const jobs[] = {
    "teacher",  "nurse",     "doctor",     "pilot",    "sailor",     "farmer",    "baker",     "painter",
    "writer",   "lawyer",    "driver",     "engineer", "tailor",     "clerk",     "banker",    "student",
    "fisherman", "miner",    "chef",       "singer",   "dancer",     "photographer", "journalist", "mechanic",
    "carpenter", "librarian", "architect", "waiter",   "postman",    "gardener",  "shopkeeper", "translator",
    "detective", "pianist",  "violinist",  "professor", "surgeon",   "priest",    "judge",     "potter",
};
static const char *const things[] = {
    "letter",   "map",      "photograph", "key",      "suitcase", "notebook", "camera",   "watch",
    "ring",     "coat",     "bicycle",    "radio",    "piano",    "violin",   "painting", "diary",
    "envelope", "lamp",     "clock",      "book",     "recipe",   "ticket",   "passport", "umbrella",
    "scarf",    "hat",      "guitar",     "telescope", "compass", "bottle",   "chair",    "mirror",
    "candle",   "blanket",  "basket",     "necklace", "jacket",   "kettle",   "typewriter", "postcard",
    "parcel",   "ladder",   "bucket",     "sketch",   "record",   "bracelet", "carpet",   "cup",
    "lantern",  "saddle",   "teapot",   "harp",     "drum",     "quilt",    "spade",    "fiddle",
};
static const char *const landmarks[] = {
    "station",  "harbour", "market",     "library", "museum",   "church",   "bridge",    "square",
    "hotel",    "bakery",  "hospital",   "school",  "factory",  "theatre",  "cinema",    "park",
    "river",    "lake",    "beach",      "castle",  "tower",    "farm",     "village",   "island",
    "airport",  "office",  "bank",       "restaurant", "bookshop", "lighthouse", "mill", "barn",
    "chapel",   "pier",    "post office", "town hall", "train station", "old port", "city gate", "bus depot",
};
static const char *const home_spots[] = {
    "kitchen", "attic", "cellar", "garage", "bedroom", "hallway", "basement", "shed", "porch", "garden",
};
static const char *const times[] = {
    "in the spring", "in the summer", "in the autumn", "in the winter", "one morning", "one evening",
    "at night",      "at dawn",       "on a Sunday",   "on a Monday",   "after the wedding", "after the harvest",
};
static const char *const vehicles[] = {"train", "bus", "ferry", "boat", "plane", "tram"};
static const char *const descriptive[] = {
    "old", "small", "wooden", "blue", "red", "green", "yellow", "white", "black", "brown",
    "tall", "narrow", "round", "tiny", "large", "plain", "silver", "stone", "iron", "paper",
};
/* what an opinion is about: "The {A} was ..." (singular) */
static const char *const aspects[] = {
    "acting",   "plot",      "script",   "score",    "music",       "direction",     "ending",   "cast",
    "dialogue", "cinematography", "pacing", "story", "film",        "movie",         "editing",  "soundtrack",
    "photography", "lead",   "opening",  "finale",   "camera work", "costume design", "lighting", "writing",
    "premise",  "tone",      "final act", "first hour", "set design", "screenplay",  "ensemble", "casting",
};
/* what the {a} and {h} slots expand to */
static const char *const slot_words[] = {"a", "an", "his", "her"};

/* ======================================================================== */
/* templates                                                                 */
/* ======================================================================== */

/* Slots (one character between braces; a template word may be a slot
 * followed by punctuation, "{P}."):
 *   N the review's protagonist (a name)    O another name
 *   h his/her (the protagonist's)           a "a" or "an", by the next word
 *   P a place     Q another place           R a relative     J a job
 *   T a thing     L a landmark              H a spot at home S a time
 *   V a vehicle   D a descriptive adjective
 *   A an aspect   C another aspect          B a booster, or nothing (70%)
 *   X an opinion word of the sentence's sign   Y one of the opposite sign
 * A sentence's first letter is capitalised. */
static const char *const neutral_templates[] = {
    "{N} travels to {P} with {h} {R}.",
    "{N} lives in {P} with {h} {R}.",
    "{N} works as {a} {J} in {P}.",
    "{N} and {O} meet at the {L} in {P}.",
    "The story begins in {P} {S}.",
    "{N} returns to {P} after many years.",
    "{N} finds {a} {D} {T} in the {H}.",
    "The film follows {N}, {a} {J} from {P}.",
    "{N} takes the {V} to {P} {S}.",
    "{N} waits for {h} {R} at the {L}.",
    "{N} writes letters to {h} {R} in {P}.",
    "Later, {N} moves to {Q} with {O}.",
    "{N} and {h} {R} open {a} {D} shop near the {L}.",
    "{N} spends a year in {P}.",
    "{N} meets {a} {J} named {O} on the {V} to {P}.",
    "The second half moves to {Q}.",
    "{N} sells {h} {T} to {a} {J}.",
    "At the {L}, {N} talks with {a} {J} from {Q}.",
    "{N} carries {a} {D} {T} across {P}.",
    "{N} drives {h} {R} to the {L} {S}.",
    "{O} asks {N} to bring {a} {T} from {Q}.",
    "{N} buys {a} {D} {T} at the {L}.",
    "{N} grew up in {P}, near the {L}.",
    "{N} visits {h} {R} in {Q} {S}.",
    "{N} and {O} ride the same {V} out of {P}.",
    "{h} {R} is {a} {J} in {P}.",
    "{N} keeps the {T} in {a} {D} box.",
    "{N} repairs an old {T} for {O}.",
    "The film is set in {P} {S}.",
    "{N} puts the {T} behind the {L}.",
};

/* Plain opinions: half the time one of the shared phrasings, half the time one
 * that leans to the sentence's sign, as reviewers praise and complain in
 * different words. Without any such local difference every opinion word of
 * one sign could stand wherever one of the other sign stands, and a small
 * GPT-2 trained on the corpus sits for thousands of steps on a plateau where
 * it has not learnt that the words of one review share a sign (README,
 * "Why the grammar has leaning phrasings"). */
static const char *const plain_templates[] = {
    "The {A} was {B} {X}.",
    "The {A} is {B} {X}.",
    "I found the {A} {B} {X}.",
    "This movie was {B} {X}.",
    "This film is {B} {X}.",
};
static const char *const plain_pos_templates[] = {
    "I thought the {A} was {B} {X}.",
    "The {A} of this film is {B} {X}.",
    "{N} gives {a} {B} {X} performance.",
    "Overall, it is {a} {B} {X} film.",
    "The {A} turned out {B} {X}.",
};
static const char *const plain_neg_templates[] = {
    "The {A} felt {B} {X}.",
    "The {A} seemed {B} {X}.",
    "It is {a} {B} {X} movie.",
    "In the end, the {A} was {B} {X}.",
    "The {A} came across as {B} {X}.",
};
/* the negation is at most three words before {X}: VADER looks that far back */
static const char *const negated_templates[] = {
    "The {A} was not {X}.",
    "The {A} wasn't {X}.",
    "The {A} is not {X}.",
    "The {A} isn't {X}.",
    "The {A} was never {X}.",
    "The {A} never felt {X}.",
    "It is not {a} {X} film.",
};
static const char *const contrast_templates[] = {
    "The {A} was {Y}, but the {C} was {B} {X}.",
    "The {A} is {Y}, but the {C} is {B} {X}.",
    "I found the {A} {Y}, but the {C} {B} {X}.",
    "The {A} felt {Y}, but the {C} felt {B} {X}.",
};

/* ======================================================================== */
/* the check of the tables against VADER                                     */
/* ======================================================================== */

typedef struct {
    const char *const *v;
    size_t n;
} str_table;

/* VADER's compound score of text. */
static int compound_of(const vader_lexicon *lx, const char *text, double *out, dpo_err *e) {
    vader_scores s;
    if (vader_score(lx, text, strlen(text), &s, e) != 0) return -1;
    *out = s.compound;
    return 0;
}

/* buf (cap bytes) = a + b + c; -1 when it does not fit. */
static int join3(char *buf, size_t cap, const char *a, const char *b, const char *c) {
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    if (la + lb + lc + 1 > cap) return -1;
    /* NOLINTNEXTLINE(bugprone-not-null-terminated-result): the third copy brings the NUL */
    memcpy(buf, a, la);
    /* NOLINTNEXTLINE(bugprone-not-null-terminated-result): as above */
    memcpy(buf + la, b, lb);
    memcpy(buf + la + lb, c, lc + 1);
    return 0;
}

#define CHECK_WORD_MAX 64

/* The compound of "pre W post" for word w. */
static int compound_around(const vader_lexicon *lx, const char *pre, const char *w, const char *post, double *out,
                           dpo_err *e) {
    char buf[3 * CHECK_WORD_MAX];
    if (join3(buf, sizeof buf, pre, w, post) != 0) return dpo_errf(e, "word \"%s\" is too long", w);
    return compound_of(lx, buf, out, e);
}

static int is_ascii_punct(unsigned char c) {
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}

static unsigned char lower_ascii(unsigned char c) { return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c; }

/* Check one word w (lower-cased, stripped) of phrase. */
static int check_one_word(const vader_lexicon *lx, const corpus_modifier *mods, size_t n_mods, const char *w,
                          const char *phrase, dpo_err *e) {
    double v, good, bad, c1, c2;
    size_t i;
    const corpus_modifier *m = NULL;
    for (i = 0; i < n_mods; i++)
        if (strcmp(mods[i].word, w) == 0) m = &mods[i];
    if (compound_of(lx, "good", &good, e) != 0 || compound_of(lx, "bad", &bad, e) != 0) return -1;
    if (!m || m->role == CORPUS_NEUTRAL) {
        if (vader_lookup(lx, w, strlen(w), &v))
            return dpo_errf(e, "neutral word \"%s\" (in \"%s\") has VADER valence %g", w, phrase, v);
        if (compound_around(lx, "", w, " good", &c1, e) != 0 || compound_around(lx, "good ", w, "", &c2, e) != 0)
            return -1;
        if (c1 != good || c2 != good)
            return dpo_errf(e, "neutral word \"%s\" (in \"%s\") changes VADER's score of the word next to it", w,
                            phrase);
        return 0;
    }
    if (vader_lookup(lx, w, strlen(w), &v))
        return dpo_errf(e, "modifier \"%s\" (in \"%s\") has VADER valence %g", w, phrase, v);
    switch (m->role) {
    case CORPUS_NEGATION:
        if (compound_around(lx, "", w, " good", &c1, e) != 0) return -1;
        if (!(c1 < 0)) return dpo_errf(e, "negation \"%s\" (in \"%s\") does not negate for VADER", w, phrase);
        break;
    case CORPUS_BOOSTER:
        if (compound_around(lx, "", w, " good", &c1, e) != 0 || compound_around(lx, "", w, " bad", &c2, e) != 0)
            return -1;
        if (!(c1 > good && c2 < bad)) return dpo_errf(e, "booster \"%s\" (in \"%s\") is no VADER booster", w, phrase);
        break;
    case CORPUS_CONTRAST:
        if (compound_around(lx, "bad ", w, " good", &c1, e) != 0 ||
            compound_around(lx, "good ", w, " bad", &c2, e) != 0)
            return -1;
        if (!(c1 > 0 && c2 < 0))
            return dpo_errf(e, "contrast word \"%s\" (in \"%s\") does not shift VADER's weight", w, phrase);
        break;
    default:
        break;
    }
    return 0;
}

/* Check every word of phrase: split at spaces, slots skipped, punctuation stripped. */
static int check_phrase(const vader_lexicon *lx, const corpus_modifier *mods, size_t n_mods, const char *phrase,
                        dpo_err *e) {
    const char *p = phrase;
    while (*p) {
        const char *s, *t;
        char w[CHECK_WORD_MAX];
        size_t n, i;
        while (*p == ' ') p++;
        if (!*p) break;
        s = p;
        while (*p && *p != ' ') p++;
        t = p;
        if (*s == '{') continue; /* a slot, perhaps with punctuation after it */
        while (s < t && is_ascii_punct((unsigned char)*s)) s++;
        while (t > s && is_ascii_punct((unsigned char)t[-1])) t--;
        n = (size_t)(t - s);
        /* cppcheck-suppress knownConditionTrueFalse ; false: a word of punctuation only leaves n == 0, others not */
        if (n == 0) continue;
        if (n >= sizeof w) return dpo_errf(e, "word in \"%s\" is too long", phrase);
        for (i = 0; i < n; i++) w[i] = (char)lower_ascii((unsigned char)s[i]);
        w[n] = '\0';
        if (check_one_word(lx, mods, n_mods, w, phrase, e) != 0) return -1;
    }
    return 0;
}

int corpus_check_words(const vader_lexicon *lx, const corpus_opinion_word *opinion, size_t n_opinion,
                       const corpus_modifier *mods, size_t n_mods, const char *const *phrases, size_t n_phrases,
                       dpo_err *e) {
    double vmin = 0, vmax = 0;
    size_t i;
    for (i = 0; i < n_opinion; i++) {
        const char *w = opinion[i].word;
        double v, a;
        if (opinion[i].sign != 1 && opinion[i].sign != -1)
            return dpo_errf(e, "opinion word \"%s\": sign %d (want 1 or -1)", w, opinion[i].sign);
        if (!vader_lookup(lx, w, strlen(w), &v))
            return dpo_errf(e, "opinion word \"%s\" is not in the VADER lexicon", w);
        a = v < 0 ? -v : v;
        if (a < 1.0) return dpo_errf(e, "opinion word \"%s\" has VADER valence %g (|valence| must be >= 1)", w, v);
        if ((v > 0 ? 1 : -1) != opinion[i].sign)
            return dpo_errf(e, "opinion word \"%s\" has VADER valence %g, but the table says %s", w, v,
                            opinion[i].sign > 0 ? "positive" : "negative");
        if (i == 0 || a < vmin) vmin = a;
        if (i == 0 || a > vmax) vmax = a;
    }
    if (n_opinion > 0 && !(vmax < 3.0 * vmin))
        return dpo_errf(e, "opinion words range over |valence| %g..%g: the largest must be below 3 times the "
                           "smallest, so that \"X, but Y\" reads as Y",
                        vmin, vmax);
    for (i = 0; i < n_phrases; i++)
        if (check_phrase(lx, mods, n_mods, phrases[i], e) != 0) return -1;
    return 0;
}

/* All neutral phrases (tables and templates), or the opinion ones, as one list
 * of *n (set also when out of memory, for the message). */
static const char **collect(int opinion_side, size_t *n) {
    static const str_table neutral[] = {
        {names_female, NELEMS(names_female)}, {names_male, NELEMS(names_male)},
        {places, NELEMS(places)},             {relatives, NELEMS(relatives)},
        {jobs, NELEMS(jobs)},                 {things, NELEMS(things)},
        {landmarks, NELEMS(landmarks)},       {home_spots, NELEMS(home_spots)},
        {times, NELEMS(times)},               {vehicles, NELEMS(vehicles)},
        {descriptive, NELEMS(descriptive)},   {aspects, NELEMS(aspects)},
        {slot_words, NELEMS(slot_words)},     {neutral_templates, NELEMS(neutral_templates)},
    };
    static const str_table opinion[] = {
        {plain_templates, NELEMS(plain_templates)},
        {plain_pos_templates, NELEMS(plain_pos_templates)},
        {plain_neg_templates, NELEMS(plain_neg_templates)},
        {negated_templates, NELEMS(negated_templates)},
        {contrast_templates, NELEMS(contrast_templates)},
        {boosters, NELEMS(boosters)},
    };
    const str_table *t = opinion_side ? opinion : neutral;
    size_t nt = opinion_side ? NELEMS(opinion) : NELEMS(neutral), total = 0, i, j, k = 0;
    const char **out;
    for (i = 0; i < nt; i++) total += t[i].n;
    *n = total;
    out = malloc(total * sizeof *out);
    if (!out) return NULL;
    for (i = 0; i < nt; i++)
        for (j = 0; j < t[i].n; j++) out[k++] = t[i].v[j];
    return out;
}

int corpus_check(const vader_lexicon *lx, dpo_err *e) {
    size_t n, i;
    const char **ph;
    int rc;
    for (i = 0; i < NELEMS(boosters); i++) {
        size_t j;
        for (j = 0; j < NELEMS(modifiers); j++)
            if (strcmp(modifiers[j].word, boosters[i]) == 0 && modifiers[j].role == CORPUS_BOOSTER) break;
        if (j == NELEMS(modifiers)) return dpo_errf(e, "booster \"%s\" is not declared a booster", boosters[i]);
    }
    /* neutral side: no modifiers allowed */
    ph = collect(0, &n);
    if (!ph) return dpo_err_oom(e, "the phrase list", n, sizeof *ph);
    rc = corpus_check_words(lx, opinion_words, NELEMS(opinion_words), NULL, 0, ph, n, e);
    free(ph);
    if (rc != 0) return -1;
    ph = collect(1, &n);
    if (!ph) return dpo_err_oom(e, "the phrase list", n, sizeof *ph);
    rc = corpus_check_words(lx, NULL, 0, modifiers, NELEMS(modifiers), ph, n, e);
    free(ph);
    return rc;
}

size_t corpus_n_opinion_words(int sign) {
    size_t i, n = 0;
    for (i = 0; i < NELEMS(opinion_words); i++)
        if (opinion_words[i].sign == sign) n++;
    return n;
}

/* ======================================================================== */
/* slots                                                                     */
/* ======================================================================== */

/* The table a slot draws from, or NULL for slots filled otherwise. */
static const char *const *slot_table(char c, size_t *n) {
    switch (c) {
    case 'P': case 'Q': *n = NELEMS(places); return places;
    case 'R': *n = NELEMS(relatives); return relatives;
    case 'J': *n = NELEMS(jobs); return jobs;
    case 'T': *n = NELEMS(things); return things;
    case 'L': *n = NELEMS(landmarks); return landmarks;
    case 'H': *n = NELEMS(home_spots); return home_spots;
    case 'S': *n = NELEMS(times); return times;
    case 'V': *n = NELEMS(vehicles); return vehicles;
    case 'D': *n = NELEMS(descriptive); return descriptive;
    case 'A': case 'C': *n = NELEMS(aspects); return aspects;
    default: *n = 0; return NULL;
    }
}

static int count_words(const char *s, size_t len) {
    int n = 0, in = 0;
    size_t i;
    for (i = 0; i < len; i++) {
        int sp = s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\v' || s[i] == '\f';
        if (!sp && !in) n++;
        in = !sp;
    }
    return n;
}

/* The most words a slot can expand to. */
static int slot_max_words(char c) {
    size_t n, i;
    const char *const *t = slot_table(c, &n);
    int m = 1;
    if (c == 'B' || c == 'X' || c == 'Y' || c == 'a' || c == 'h' || c == 'N' || c == 'O') return 1;
    for (i = 0; i < n; i++) {
        int w = count_words(t[i], strlen(t[i]));
        if (w > m) m = w;
    }
    return m;
}

static int template_max_words(const char *t) {
    int n = 0;
    const char *p = t;
    while (*p) {
        while (*p == ' ') p++;
        if (!*p) break;
        n += *p == '{' ? slot_max_words(p[1]) : 1;
        while (*p && *p != ' ') p++;
    }
    return n;
}

int corpus_max_sentence_words(void) {
    static const str_table all[] = {
        {neutral_templates, NELEMS(neutral_templates)},
        {plain_templates, NELEMS(plain_templates)},
        {plain_pos_templates, NELEMS(plain_pos_templates)},
        {plain_neg_templates, NELEMS(plain_neg_templates)},
        {negated_templates, NELEMS(negated_templates)},
        {contrast_templates, NELEMS(contrast_templates)},
    };
    size_t i, j;
    int m = 0;
    for (i = 0; i < NELEMS(all); i++)
        for (j = 0; j < all[i].n; j++) {
            int w = template_max_words(all[i].v[j]);
            if (w > m) m = w;
        }
    return m;
}

int corpus_params_check(const corpus_params *p, dpo_err *e) {
    int smax = corpus_max_sentence_words();
    if (p->min_words < 1) return dpo_errf(e, "--min-words must be at least 1 (got %d)", p->min_words);
    if (p->max_words > CORPUS_MAX_REVIEW_WORDS)
        return dpo_errf(e, "--max-words must be at most %d (got %d)", CORPUS_MAX_REVIEW_WORDS, p->max_words);
    if (p->max_words < p->min_words || p->max_words - p->min_words < smax - 1)
        return dpo_errf(e,
                        "--max-words (%d) must exceed --min-words (%d) by at least %d, the longest sentence less one, "
                        "so that reviews of whole sentences fit",
                        p->max_words, p->min_words, smax - 1);
    return 0;
}

/* ======================================================================== */
/* generation                                                                */
/* ======================================================================== */

void corpus_buf_free(corpus_buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static int buf_append(corpus_buf *b, const char *s, size_t n, dpo_err *e) {
    if (n + 1 > b->cap - b->len || !b->p) {
        size_t need, nc = b->cap ? b->cap : 4096;
        char *q;
        if (util_add_size(b->len, n + 1, &need) != 0) {
            dpo_errf(e, "out of memory for a corpus file's text (%zu + %zu bytes)", b->len, n + 1);
            return dpo_err_resource(e);
        }
        while (nc < need) {
            if (nc > ((size_t)-1) / 2) return dpo_err_oom(e, "a corpus file's text", nc, 2);
            nc *= 2;
        }
        q = realloc(b->p, nc);
        if (!q) return dpo_err_oom(e, "a corpus file's text", nc, 1);
        b->p = q;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* A uniform integer in [0, n): the 64-bit draw modulo n (a bias below 2^-50
 * for the tables here, and the same on every machine). */
static size_t pick(util_rng *r, size_t n) { return (size_t)(util_rng_u64(r) % (uint64_t)n); }

/* The state one review's sentences share. */
typedef struct {
    util_rng *rng;
    const char *name;  /* the protagonist */
    int female;
} review_state;

/* One word of a sentence being built: the text a slot or literal gave
 * (perhaps several words, or empty), and the punctuation glued after it. */
typedef struct {
    const char *w;
    size_t wlen;
    const char *suffix;
    size_t slen;
    int article; /* an {a}: "a" or "an", chosen at output by the next word */
} item;

#define MAX_ITEMS 40

static const char *pick_opinion(util_rng *r, int sign) {
    /* the table holds 50 positive words, then 50 negative ones */
    size_t n = corpus_n_opinion_words(sign), k = pick(r, n), i;
    for (i = 0; i < NELEMS(opinion_words); i++)
        if (opinion_words[i].sign == sign && k-- == 0) return opinion_words[i].word;
    return opinion_words[0].word; /* not reached */
}

static const char *pick_name(util_rng *r, int *female) {
    size_t k = pick(r, NELEMS(names_female) + NELEMS(names_male));
    if (k < NELEMS(names_female)) {
        if (female) *female = 1;
        return names_female[k];
    }
    if (female) *female = 0;
    return names_male[k - NELEMS(names_female)];
}

/* Expand template tpl (sign: the sentence's; 0 for a neutral one) into
 * items[0..*n). Every draw comes from st->rng in template order. */
static void expand(review_state *st, const char *tpl, int sign, item *items, int *n) {
    const char *p = tpl, *first_a = NULL, *first_p = NULL;
    int k = 0;
    while (*p && k < MAX_ITEMS) {
        const char *s, *t;
        item *it = &items[k];
        while (*p == ' ') p++;
        if (!*p) break;
        s = p;
        while (*p && *p != ' ') p++;
        t = p;
        it->article = 0;
        if (*s == '{' && t - s >= 3 && s[2] == '}') {
            char c = s[1];
            size_t tn;
            const char *const *tab = slot_table(c, &tn);
            const char *w = "";
            it->suffix = s + 3;
            it->slen = (size_t)(t - s - 3);
            if (tab) {
                size_t j = pick(st->rng, tn);
                /* Q differs from the sentence's P, C from its A */
                const char *avoid = c == 'Q' ? first_p : c == 'C' ? first_a : NULL;
                if (avoid && tab[j] == avoid && tn > 1) j = (j + 1 + pick(st->rng, tn - 1)) % tn;
                w = tab[j];
                if (c == 'P' && !first_p) first_p = w;
                if (c == 'A' && !first_a) first_a = w;
            } else if (c == 'N') {
                w = st->name;
            } else if (c == 'O') {
                do w = pick_name(st->rng, NULL);
                while (w == st->name);
            } else if (c == 'h') {
                w = st->female ? "her" : "his";
            } else if (c == 'a') {
                w = "a";
                it->article = 1;
            } else if (c == 'B') {
                w = pick(st->rng, 10) < 3 ? boosters[pick(st->rng, NELEMS(boosters))] : "";
            } else if (c == 'X') {
                w = pick_opinion(st->rng, sign);
            } else if (c == 'Y') {
                w = pick_opinion(st->rng, -sign);
            }
            it->w = w;
            it->wlen = strlen(w);
            if (it->wlen == 0 && it->slen == 0) continue; /* an empty {B} */
        } else {
            it->w = s;
            it->wlen = (size_t)(t - s);
            it->suffix = "";
            it->slen = 0;
        }
        k++;
    }
    *n = k;
}

static int is_vowel(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

/* Append the sentence items[0..n) to out (a space before it unless it is the
 * review's first), its first letter capitalised, "." at its end replaced by
 * "!" when exclaim. Returns its words, or -1. */
static int emit(corpus_buf *out, int first, item *items, int n, int exclaim, dpo_err *e) {
    int i, words = 0;
    if (!first && buf_append(out, " ", 1, e) != 0) return -1;
    for (i = 0; i < n; i++) {
        const item *it = &items[i];
        const char *w = it->w;
        size_t wl = it->wlen;
        if (it->article) {
            int j = i + 1;
            while (j < n && items[j].wlen == 0) j++;
            w = j < n && is_vowel(items[j].w[0]) ? "an" : "a";
            wl = strlen(w);
        }
        if (i > 0 && buf_append(out, " ", 1, e) != 0) return -1;
        if (i == 0 && wl > 0 && w[0] >= 'a' && w[0] <= 'z') {
            char c = (char)(w[0] - 32);
            if (buf_append(out, &c, 1, e) != 0 || buf_append(out, w + 1, wl - 1, e) != 0) return -1;
        } else if (buf_append(out, w, wl, e) != 0) {
            return -1;
        }
        if (exclaim && i == n - 1 && it->slen == 1 && it->suffix[0] == '.') {
            if (buf_append(out, "!", 1, e) != 0) return -1;
        } else if (buf_append(out, it->suffix, it->slen, e) != 0) {
            return -1;
        }
        words += count_words(w, wl);
    }
    return words;
}

/* One sentence: neutral (sign 0) or an opinion of sign +1/-1. */
static int sentence(review_state *st, corpus_buf *out, int first, int sign, dpo_err *e) {
    item items[MAX_ITEMS];
    int n, exclaim = 0;
    const char *tpl;
    if (sign == 0) {
        tpl = neutral_templates[pick(st->rng, NELEMS(neutral_templates))];
    } else {
        size_t kind = pick(st->rng, 20); /* plain 13/20, negated 3/20, contrast 4/20 */
        if (kind < 13 && pick(st->rng, 2) == 0) tpl = plain_templates[pick(st->rng, NELEMS(plain_templates))];
        else if (kind < 13 && sign > 0) tpl = plain_pos_templates[pick(st->rng, NELEMS(plain_pos_templates))];
        else if (kind < 13) tpl = plain_neg_templates[pick(st->rng, NELEMS(plain_neg_templates))];
        else if (kind < 16) tpl = negated_templates[pick(st->rng, NELEMS(negated_templates))];
        else tpl = contrast_templates[pick(st->rng, NELEMS(contrast_templates))];
        /* a negated template's {X} is written with the opposite sign: VADER flips it */
        if (kind >= 13 && kind < 16) sign = -sign;
        exclaim = pick(st->rng, 40) == 0;
    }
    expand(st, tpl, sign, items, &n);
    return emit(out, first, items, n, exclaim, e);
}

/* corpus_review for checked params p; smax = corpus_max_sentence_words(). */
static int review(const corpus_params *p, int smax, uint64_t index, corpus_buf *out, corpus_review_info *info,
                  dpo_err *e) {
    util_rng rng;
    review_state st;
    int total = 0, have_opinion = 0, n_sent = 0, n_neutral = 0, rating, target;
    uint64_t p_pos;
    util_rng_seed(&rng, util_mix64(util_mix64(p->seed) + index));
    st.rng = &rng;
    rating = CORPUS_MIN_RATING + (int)pick(&rng, CORPUS_MAX_RATING - CORPUS_MIN_RATING + 1);
    p_pos = (uint64_t)(2 * rating - 1); /* out of 20 */
    /* NOLINTNEXTLINE(bugprone-misplaced-widening-cast): checked, max_words - min_words >= smax - 1 */
    target = p->min_words + (int)pick(&rng, (size_t)(p->max_words - smax + 1 - p->min_words + 1));
    st.name = pick_name(&rng, &st.female);
    while (total < target) {
        /* this sentence may be the last: then it must be an opinion, if none was yet */
        int force = !have_opinion && total + smax >= target;
        int neutral = !force && pick(&rng, 3) == 0, sign = 0, words;
        size_t start = out->len + (n_sent > 0);
        if (!neutral) sign = pick(&rng, 20) < p_pos ? 1 : -1;
        words = sentence(&st, out, n_sent == 0, sign, e);
        if (words < 0) return -1;
        if (info && info->sentences && n_sent < info->cap) {
            corpus_sentence *s = &info->sentences[n_sent];
            s->start = start;
            s->len = out->len - start;
            s->words = words;
            s->polarity = sign;
        }
        n_sent++;
        total += words;
        have_opinion |= !neutral;
        n_neutral += neutral;
    }
    if (info) {
        info->rating = rating;
        info->words = total;
        info->n_sentences = n_sent;
        info->n_neutral = n_neutral;
    }
    return 0;
}

int corpus_review(const corpus_params *p, uint64_t index, corpus_buf *out, corpus_review_info *info, dpo_err *e) {
    if (corpus_params_check(p, e) != 0) return -1;
    return review(p, corpus_max_sentence_words(), index, out, info, e);
}

/* ======================================================================== */
/* distinct words                                                            */
/* ======================================================================== */

typedef struct {
    const char *s; /* into the text; NULL: empty slot */
    size_t n;
} word_ref;

static uint64_t hash_word(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over the lower-cased bytes */
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ lower_ascii((unsigned char)s[i])) * 1099511628211ULL;
    return h;
}

static int same_word(const char *a, const char *b, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if (lower_ascii((unsigned char)a[i]) != lower_ascii((unsigned char)b[i])) return 0;
    return 1;
}

int corpus_distinct_words(const char *text, size_t len, size_t *out, dpo_err *e) {
    size_t cap = 1024, count = 0, i = 0;
    word_ref *set = calloc(cap, sizeof *set);
    if (!set) return dpo_err_oom(e, "the word set", cap, sizeof *set);
    while (i < len) {
        size_t s, t, h;
        while (i < len && count_words(text + i, 1) == 0) i++;
        s = i;
        while (i < len && count_words(text + i, 1) == 1) i++;
        t = i;
        while (s < t && is_ascii_punct((unsigned char)text[s])) s++;
        while (t > s && is_ascii_punct((unsigned char)text[t - 1])) t--;
        if (s == t) continue;
        if (2 * (count + 1) > cap) { /* grow: rehash into twice the slots */
            size_t nc = 2 * cap, j;
            word_ref *ns = nc > ((size_t)-1) / sizeof *ns ? NULL : calloc(nc, sizeof *ns);
            if (!ns) {
                free(set);
                return dpo_err_oom(e, "the word set", nc, sizeof *ns);
            }
            for (j = 0; j < cap; j++)
                if (set[j].s) {
                    size_t k = (size_t)hash_word(set[j].s, set[j].n) & (nc - 1);
                    while (ns[k].s) k = (k + 1) & (nc - 1);
                    ns[k] = set[j];
                }
            free(set);
            set = ns;
            cap = nc;
        }
        h = (size_t)hash_word(text + s, t - s) & (cap - 1);
        while (set[h].s && !(set[h].n == t - s && same_word(set[h].s, text + s, t - s))) h = (h + 1) & (cap - 1);
        if (!set[h].s) {
            set[h].s = text + s;
            set[h].n = t - s;
            count++;
        }
    }
    free(set);
    *out = count;
    return 0;
}

/* ======================================================================== */
/* the corpus files                                                          */
/* ======================================================================== */

static int append_uint(corpus_buf *b, unsigned long v, dpo_err *e) {
    char d[24];
    int n = 0;
    do {
        d[sizeof d - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < (int)sizeof d);
    return buf_append(b, d + sizeof d - n, (size_t)n, e);
}

int corpus_write(const char *dir, const corpus_params *p, long n_reviews, long n_heldout, corpus_stats *st,
                 dpo_err *e) {
    corpus_buf text[2] = {{NULL, 0, 0}, {NULL, 0, 0}}, ratings = {NULL, 0, 0};
    corpus_stats s;
    char path[4096];
    static const char *const files[2] = {"heldout.txt", "train.txt"};
    static const char *const split[2] = {"heldout", "train"};
    int *rating = NULL, rc = -1, f, smax = corpus_max_sentence_words();
    size_t bytes;
    long i;
    memset(&s, 0, sizeof s);
    if (n_reviews < 1 || n_heldout < 0 || n_heldout >= n_reviews) {
        dpo_errf(e, "the held-out reviews (%ld) must be fewer than the reviews (%ld)", n_heldout, n_reviews);
        goto done;
    }
    if (corpus_params_check(p, e) != 0) goto done;
    if (util_mul_size((size_t)n_reviews, sizeof *rating, &bytes) != 0 || !(rating = malloc(bytes))) {
        dpo_err_oom(e, "the ratings", (size_t)n_reviews, sizeof *rating);
        goto done;
    }
    for (i = 0; i < n_reviews; i++) {
        corpus_review_info info;
        corpus_buf *b = &text[i >= n_heldout];
        info.sentences = NULL;
        info.cap = 0;
        if (review(p, smax, (uint64_t)i, b, &info, e) != 0 || buf_append(b, "\n", 1, e) != 0) goto done;
        rating[i] = info.rating;
        s.words += (size_t)info.words;
        s.neutral_sentences += (size_t)info.n_neutral;
        s.opinion_sentences += (size_t)(info.n_sentences - info.n_neutral);
    }
    /* ratings.tsv: the training reviews first, as the files are named in it */
    if (buf_append(&ratings, "line\tsplit\trating\n", 18, e) != 0) goto done;
    for (f = 1; f >= 0; f--) {
        long lo = f ? n_heldout : 0, hi = f ? n_reviews : n_heldout;
        for (i = lo; i < hi; i++)
            if (append_uint(&ratings, (unsigned long)(i - lo + 1), e) != 0 || buf_append(&ratings, "\t", 1, e) != 0 ||
                buf_append(&ratings, split[f], strlen(split[f]), e) != 0 || buf_append(&ratings, "\t", 1, e) != 0 ||
                append_uint(&ratings, (unsigned long)rating[i], e) != 0 || buf_append(&ratings, "\n", 1, e) != 0)
                goto done;
    }
    {
        corpus_buf both = {NULL, 0, 0};
        int r2 = buf_append(&both, text[0].p ? text[0].p : "", text[0].len, e) != 0 ||
                 buf_append(&both, text[1].p, text[1].len, e) != 0 ||
                 corpus_distinct_words(both.p, both.len, &s.distinct_words, e) != 0;
        corpus_buf_free(&both);
        if (r2) goto done;
    }
    if (util_mkdir(dir, e) != 0) goto done;
    for (f = 1; f >= 0; f--) {
        if (util_path_join(path, sizeof path, dir, files[f], e) != 0 ||
            util_atomic_write_file(path, text[f].p ? text[f].p : "", text[f].len, e) != 0)
            goto done;
    }
    if (util_path_join(path, sizeof path, dir, "ratings.tsv", e) != 0 ||
        util_atomic_write_file(path, ratings.p, ratings.len, e) != 0)
        goto done;
    if (st) *st = s;
    rc = 0;
done:
    free(rating);
    corpus_buf_free(&text[0]);
    corpus_buf_free(&text[1]);
    corpus_buf_free(&ratings);
    return rc;
}
