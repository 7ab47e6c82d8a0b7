"""Build the codename word lists of securedrop_wm/wordlists/ from wordfreq's data.

    python3 scripts/build_wordlists.py            # rebuild every list (byte-identical)
    python3 scripts/build_wordlists.py --check    # fail if a committed list differs

The script installs wordfreq (requirements/wordlists.txt, hash-locked) into its own venv,
build/wordlists-venv, and runs itself there. wordfreq is never a dependency of the drop,
its tests or its machines: the lists are committed files. What it keeps and why:
docs/codenames.md. wordfreq: code Apache-2.0, data CC-BY-SA 4.0, by Robyn Speer and
contributors; the lists derived from its data are shared under CC-BY-SA 4.0.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import re
import subprocess
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "securedrop_wm" / "wordlists"
VENV = Path(os.environ.get("SDWM_WORDLISTS_VENV", ROOT / "build" / "wordlists-venv"))
WORDFREQ = "3.1.1"
#: The most words a list keeps, the most frequent first: 6**5, as diceware lists have.
MAX_WORDS = 7776
#: The fewest distinct words a list may have (10 bits a word).
MIN_WORDS = 1024
#: How deep into wordfreq's frequency list a language is read.
DEPTH = 200_000


def _letters(alphabet: str) -> Callable[[str], bool]:
    allowed = frozenset(alphabet)
    return lambda word: all(c in allowed for c in word)


def _named(prefixes: tuple[str, ...], low: int, high: int) -> Callable[[str], bool]:
    """Letters (and vowel signs) of one script, by code point range and Unicode name."""

    def check(word: str) -> bool:
        for c in word:
            name = unicodedata.name(c, "")
            if not (low <= ord(c) <= high and name.startswith(prefixes)):
                return False
        return True

    return check


_ARABIC = _named(("ARABIC LETTER",), 0x0621, 0x06FF)


def _joined(letters: Callable[[str], bool], joiner: str) -> Callable[[str], bool]:
    """Letters, with ``joiner`` allowed between two of them (Persian's ZWNJ in "می‌شود",
    Ukrainian's apostrophe in "пам'ять")."""

    def check(word: str) -> bool:
        parts = word.split(joiner)
        return all(part and letters(part) for part in parts)

    return check


_AR_CLITICS = ("وال", "بال", "فال", "كال", "لل", "ال", "و", "ف", "ب", "ل", "ك")
_HE_CLITICS = ("וה", "שה", "מה", "ה", "ו", "ב", "ל", "מ", "ש", "כ")
_PERSIAN_DISPLAY = str.maketrans({"\u064a": "\u06cc", "\u0643": "\u06a9", "\u0649": "\u06cc"})
_ARABIC_DISPLAY = str.maketrans({"\u06cc": "\u064a", "\u06a9": "\u0643"})
_INDIC = ("LETTER", "VOWEL SIGN", "SIGN ANUSVARA", "SIGN CANDRABINDU", "SIGN NUKTA",
          "SIGN VIRAMA", "SIGN VISARGA", "AU LENGTH MARK")  # fmt: skip
_HEBREW = _named(("HEBREW LETTER",), 0x05D0, 0x05EA)
_DEVANAGARI = _named(tuple("DEVANAGARI " + p for p in _INDIC), 0x0900, 0x094F)
_BENGALI = _named(tuple("BENGALI " + p for p in _INDIC), 0x0980, 0x09DF)
_UKRAINIAN = _joined(_letters("абвгґдеєжзиіїйклмнопрстуфхцчшщьюя"), "'")
_PERSIAN = _joined(_ARABIC, "\u200c")

# A Vietnamese syllable, its tone marks taken off: initial consonant, vowels, final.
_VI_SYLLABLE = re.compile(
    "(?:ngh|ng|gh|gi|kh|nh|ph|qu|th|tr|ch|[bcdđghklmnprstvx])?"
    "(?:uyê|uya|uyu|oai|oao|oay|oeo|uây|uôi|ươi|ươu|iêu|yêu"
    "|ai|ao|au|ay|âu|ây|eo|êu|ia|iê|iu|oa|oă|oe|oi|ôi|ơi|ua|uâ|uê|ui|uô|uơ|uy|ưa|ưi|ưu|ươ|yê"
    "|[aăâeêioôơuưy])"
    "(?:ng|nh|ch|[cmnpt])?"
)
_VI_TONES = frozenset("\u0300\u0301\u0303\u0309\u0323")


def _vietnamese(word: str) -> bool:
    """One Vietnamese syllable with at most one tone mark (wordfreq's Vietnamese list
    also holds English words and names, which this shape leaves out)."""
    decomposed = unicodedata.normalize("NFD", word)
    if sum(c in _VI_TONES for c in decomposed) > 1:
        return False
    toneless = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in _VI_TONES))
    return _VI_SYLLABLE.fullmatch(toneless) is not None


@dataclass(frozen=True)
class Spec:
    """How one language's list is made."""

    code: str  # the securedrop-wm language code (the list's file name)
    wordfreq: str  # wordfreq's code
    name: str
    script: Callable[[str], bool]
    shortest: int  # in code points, after NFC
    longest: int
    display: dict[int, str] = field(default_factory=dict)  # letter forms shown
    latin: bool = False  # also drop ASCII words that are English (wordfreq's carry loans)
    block_display: bool = False  # match the blocklist on the shown word, not the folded
    proclitics: tuple[str, ...] = ()  # prefixes written onto a word (Arabic "wa-", "al-")


SPECS = (
    Spec("ar", "ar", "Arabic", _ARABIC, 3, 8, _ARABIC_DISPLAY, proclitics=_AR_CLITICS),
    Spec("fa", "fa", "Persian", _PERSIAN, 3, 9, _PERSIAN_DISPLAY, proclitics=("و", "ب")),
    Spec("ur", "ur", "Urdu", _ARABIC, 3, 8, _PERSIAN_DISPLAY),
    Spec("he", "he", "Hebrew", _HEBREW, 3, 8, proclitics=_HE_CLITICS),
    Spec("ru", "ru", "Russian", _letters("абвгдеёжзийклмнопрстуфхцчшщъыьэюя"), 4, 10),
    Spec("uk", "uk", "Ukrainian", _UKRAINIAN, 4, 10, {0x2019: "'", 0x02BC: "'"}),
    Spec("hi", "hi", "Hindi", _DEVANAGARI, 2, 9),
    Spec("bn", "bn", "Bengali", _BENGALI, 2, 9),
    Spec("ko", "ko", "Korean", lambda w: all(0xAC00 <= ord(c) <= 0xD7A3 for c in w), 2, 4),
    Spec("tr", "tr", "Turkish", _letters("abcçdefgğhıijklmnoöprsştuüvyz"), 4, 9, latin=True),
    Spec("id", "id", "Indonesian", _letters("abcdefghijklmnopqrstuvwxyz"), 4, 9, latin=True),
    Spec("pl", "pl", "Polish", _letters("aąbcćdeęfghijklłmnńoóprsśtuwyzźż"), 4, 9, latin=True),
    Spec("vi", "vi", "Vietnamese", _vietnamese, 2, 7, latin=True, block_display=True),
)

# Offensive words, slurs, sexual terms, and words of violence a person in danger should not
# have to write down and carry (rape, murder, suicide, terror, bombs and weapons). wordfreq
# ships no blocklist, so these are short hand-made lists of the commonest ones (a trailing
# * blocks every word that starts so).
# They are matched on the folded form (on the shown word for Vietnamese, whose folding
# drops the tones).
BLOCKLIST = {
    "ar": "شرموط* عاهر* قحب* منيك* متناك* نيك* زبي طيز* خول لوطي عرص* معرص* كسم* كسمك "
    "زاني* زانيه شاذ* سكس* بزاز "
    "اغتصاب* مغتصب* انتحار* قتل* مقتول* ارهاب* إرهاب* جنس* إعدام* اعدام* تعذيب* "
    "قنبل* متفجر* سلاح* أسلحة* اسلحة* رصاص* مسدس* بندقي* صاروخ* ذخير* انفجار* تفجير*",
    "fa": "کیر* کس* کون* جنده* فاحشه* حرامزاده* کسکش* لاشی* گایید* پفیوز* دیوث* خایه* "
    "سکس* جاکش* قرمساق* "
    "خودکشی* قتل* تروریست* اعدام* شکنجه* تجاوز* "
    "بمب* اسلحه* سلاح* تفنگ* گلوله* موشک* انفجار* منفجر*",
    "ur": "چوتیا* چوت* بھوسڑی* گانڈ* حرامی* حرامزادہ* کنجر* رنڈی* لوڑا* لن چود* "
    "مادرچود* بہنچود* سکس* "
    "خودکشی* قتل* عصمت* دہشت* زیادتی* تشدد* "
    "بم اسلحہ* ہتھیار* بندوق* گولی* دھماک* میزائل*",
    "he": "זונה* זין* זיון* כוס* מזדיין* לזיין* שרמוט* מניאק* חרא* קוקסינל* ערבוש* כושי* "
    "סקס* הומו* "
    "אונס* נאנס* התאבד* רצח* רוצח* טרור* מחבל* עינוי* "
    "פצצ* נשק* אקדח* רובה* טיל* פיצוץ* נפץ*",
    "ru": "хуй* хуе* хуя* хуи* пизд* ебат* ебан* ебал* ебу* ебл* еби* выеб* заеб* уеб* "
    "бля* сука суки суку сучк* мудак* мудил* гандон* пидор* пидар* педик* жоп* срат* "
    "сран* говн* залуп* манда дерьм* дроч* минет* шлюх* чурк* жид* хохол* москал* секс* "
    "насил* изнасил* убий* убит* убью убил* самоубий* суицид* террор* казн* пытк* "
    "бомб* оруж* взрыв* пистолет* винтовк* пуля пули пулю пулей ракет* гранат*",
    "uk": "хуй* хує* хуя* пизд* їбат* їбан* єба* ебат* бля* сука суки курв* срак* гівн* "
    "жоп* дупа повія* шльондр* підор* підар* педик* москал* кацап* жид* хохол* секс* "
    "насил* зґвалт* ґвалт* вбив* вбит* убив* самогуб* суїцид* терор* катуван* страт* "
    "бомб* зброя зброї зброю вибух* пістолет* гвинтівк* куля кулі ракет* гранат*",
    "hi": "चूतिया* चुतिया* चूत* भोसडी* गांड* लौडा* लौडे* लंड* मादरचोद* बहनचोद* भेनचोद* "
    "हरामी* हरामजादा* रंडी* कुत्ती* कमीना* कमीनी* चोद* चुद* सेक्स* "
    "बलात्कार* आत्महत्या* हत्या* हत्यारा* आतंक* फांसी* "
    "बम हथियार* विस्फोट* बंदूक* गोली* मिसाइल* धमाक*",
    "bn": "চোদ* চুদ* মাগী* মাগি* খানকি* শুয়োর* হারামি* হারামজাদা* বেশ্যা* গুদ* ধোন* "
    "বাঁড়া* শালা* বাল সেক্স* "
    "ধর্ষণ* ধর্ষক* আত্মহত্যা* হত্যা* খুন* সন্ত্রাস* ফাঁসি* "
    "বোমা* অস্ত্র* বিস্ফোরণ* বিস্ফোরক* বন্দুক* গুলি* মিসাইল*",
    "ko": "씨발* 시발* 개새끼* 새끼* 병신* 좆* 지랄* 미친놈* 미친년* 썅* 니미* 애미* "
    "보지* 자지* 창녀* 걸레* 개년* 섹스* "
    "강간* 자살* 살인* 살해* 테러* 성폭* 사형* "
    "폭탄* 무기* 총기* 권총* 폭발* 미사일* 수류탄*",
    "tr": "amk amina* amcik* orospu* sik* yarrak* yarak* got gotveren* pezevenk* kahpe* "
    "pic ibne* pust kaltak* gavat* dalyarak* seks* "
    "tecavuz* intihar* cinayet* katil* oldur* teror* idam* iskence* "
    "bomba* silah* patlay* tabanca* tufek* kursun* fuze*",
    "id": "bangsat* bajingan* kontol* memek* ngentot* entot* jancok* jancuk* pelacur* "
    "lonte* perek goblok* tolol* kampret* brengsek* asu ngewe* seks* bokep* "
    "perkosa* pemerkosa* diperkosa* bunuh* pembunuh* teror* siksa* "
    "bom bomb* senjata* ledak* peledak* pistol* senapan* peluru* rudal* granat*",
    "pl": "kurw* chuj* huj* pierdol* jeban* jebac* jebie* pizd* cipa cipy spierdal* "
    "zajeb* wyjeb* dziwk* skurwysyn* suka ciota* pedal* seks* "
    "gwalt* zgwalc* samoboj* zabij* zabit* morders* morder* terror* tortur* "
    "bomb* bron* wybuch* pistolet* karabin* pocisk* rakiet* granat*",
    "vi": "đụ địt lồn buồi cặc đĩ đéo đếch dâm điếm hiếp giết bom súng đạn nổ",
}


def _wordfreq_ready() -> bool:
    try:
        return metadata.version("wordfreq") == WORDFREQ
    except metadata.PackageNotFoundError:
        return False


def _enter_venv() -> NoReturn:
    """Install the hash-locked wordfreq into the build venv and run this script there."""
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--require-hashes", "-r",
         str(ROOT / "requirements" / "wordlists.txt")],
        check=True,
    )  # fmt: skip
    sys.exit(subprocess.run([str(python), __file__, *sys.argv[1:]], check=False).returncode)


def _load_fold() -> Callable[[str], str]:
    """The runtime's own fold, read from its file (the package's imports are not needed)."""
    path = ROOT / "securedrop_wm" / "codename_folding.py"
    spec = importlib.util.spec_from_file_location("codename_folding", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fold: Callable[[str], str] = module.fold
    return fold


def _blocked(spec: Spec, fold: Callable[[str], str]) -> Callable[[str], bool]:
    entries = BLOCKLIST.get(spec.code, "").split()
    key = (lambda w: unicodedata.normalize("NFC", w)) if spec.block_display else fold
    exact = {key(e) for e in entries if not e.endswith("*")}
    prefixes = tuple(key(e[:-1]) for e in entries if e.endswith("*"))
    clitics = tuple(sorted((key(c) for c in spec.proclitics), key=len, reverse=True))

    def blocked(word: str) -> bool:
        forms = [key(word)] + [key(word)[len(c) :] for c in clitics if key(word).startswith(c)]
        return any(f in exact or f.startswith(prefixes) for f in forms if f)

    return blocked


def build(spec: Spec, fold: Callable[[str], str], english: frozenset[str]) -> list[str]:
    """The shown words of ``spec``'s list: one per folded form, the most frequent."""
    import wordfreq

    blocked = _blocked(spec, fold)
    chosen: dict[str, str] = {}
    for raw in wordfreq.iter_wordlist(spec.wordfreq, "best"):
        word = unicodedata.normalize("NFC", raw).translate(spec.display)
        if not (spec.shortest <= len(word) <= spec.longest) or not spec.script(word):
            continue
        if blocked(word) or (spec.latin and word.isascii() and word in english):
            continue
        key = fold(word)
        if " " in key or not key:
            continue
        chosen.setdefault(key, word)  # the first seen is the most frequent
        if len(chosen) == MAX_WORDS:
            break
    if len(chosen) < MIN_WORDS:
        raise SystemExit(f"{spec.code}: only {len(chosen)} words pass the filters")
    return sorted(chosen.values())


def header(spec: Spec, count: int) -> str:
    version = metadata.version("wordfreq")
    return (
        f"# securedrop-wm codename words, {spec.name} ({spec.code}): {count} words, "
        f"{math.log2(count):.2f} bits each after folding.\n"
        f"# Built by scripts/build_wordlists.py from wordfreq {version} "
        f"(Unicode {unicodedata.unidata_version}); do not edit by hand.\n"
        "# Word frequencies: wordfreq by Robyn Speer and contributors, code Apache-2.0,\n"
        "# data CC-BY-SA 4.0 (https://github.com/rspeer/wordfreq). This list is derived\n"
        "# from that data and is shared under CC-BY-SA 4.0; the sources wordfreq credits\n"
        "# (Google Books Ngrams, Wikipedia, OpenSubtitles, SUBTLEX, ...): docs/codenames.md.\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    parser.add_argument("languages", nargs="*", help="only these (default: all)")
    args = parser.parse_args()
    if not _wordfreq_ready():
        _enter_venv()
    import wordfreq

    fold = _load_fold()
    english = frozenset(wordfreq.top_n_list("en", 20000))
    OUT.mkdir(exist_ok=True)
    differ = []
    for spec in SPECS:
        if args.languages and spec.code not in args.languages:
            continue
        words = build(spec, fold, english)
        text = header(spec, len(words)) + "".join(w + "\n" for w in words)
        path = OUT / f"{spec.code}.txt"
        if args.check:
            if not path.exists() or path.read_text("utf-8") != text:
                differ.append(spec.code)
        else:
            path.write_text(text, "utf-8")
        print(f"{spec.code}: {len(words)} words, {math.log2(len(words)):.2f} bits each")
    if differ:
        print("differ from the committed lists: " + " ".join(differ), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
