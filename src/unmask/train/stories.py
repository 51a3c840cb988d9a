"""A seeded grammar of short children's stories, and the recognizer that scores fluency with it.

The small models unmask trains on a CPU learn from stories this module writes. Their fluency is
then measured as the share of generated sentences that the same grammar derives, and their
creativity as the share of those accepted sentences that never occurred in the training corpus.

Notable features:
- One grammar drives both directions. Sentence templates are written in a tiny EBNF
  (`<symbol>`, `( a | b )`, `[ optional ]`) over word classes; the generator expands the parse
  trees and the recognizer compiles the very same trees into one regular expression, so the two
  cannot drift apart.
- Stories stay coherent without a second grammar: a story binds symbols such as `<hero_noun>`
  or `<object>` to a few of their derivations and forbids symbols it has no value for (a hero
  without a name forbids `<hero_name>`). Later sentences then say "the fox", "Pip" or "she" and
  are still plain derivations of the shared grammar; every binding is checked against it.
- The recognizer works on words, not characters: each vocabulary word and punctuation mark maps
  to one private-use character, so a word class becomes a regex character class and a
  15-word sentence is matched as a 15-character string.
- It is strict about surface form: capitals only at the start of a sentence or quotation (and
  for names and "I"), "a"/"an" chosen by the next word, canonical spacing around punctuation and
  quotes. Shuffled, truncated or misspelt sentences are rejected.
- Templates carry several independent slots (names, creatures, objects, places, feelings), so
  the sentence space (`sentence_space()`) dwarfs any corpus drawn from it and a model's accepted
  sentences can be measured for novelty.
"""

from __future__ import annotations

import functools
import itertools
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

# ---------------------------------------------------------------------------------------------
# Lexicon: word classes. Every word a story can contain is listed here or in a template.
# ---------------------------------------------------------------------------------------------

# Names are proper nouns, so none may equal a lowercase vocabulary word (tested): a capitalised
# "Daisy" at the start of a sentence must mean the name, never a flower. Names are grouped by the
# pronoun they suit; pet names suit either.
_SHE_NAMES = """
Mia Lily Anna Zoe Ella Rosie Molly Lucy Emma Ava Nora Luna Tilly Bella Daisy Poppy Hazel Abby
Alice Bea Bonnie Cleo Cora Dot Edie Elsie Esme Evie Flora Freya Gemma Gigi Greta Hattie Heidi Ida
Isla Josie Lola Lottie Mabel Maisie Matilda Millie Minnie Nell Nina Pippa Polly Rita Rosa Sadie
Sophie Stella Tess Vera Wendy Winnie Yara Zara Clementine Dolly Florence Harriet Jemima Lulu
Martha Sally Ursula Agnes Dora Fiona Imogen Orla Peggy Sybil Tabitha Alma Connie Enid Gwen Juniper
Kiki Moira Olga Pansy Selma Trixie Ursa Wilma Elsa Fern Gracie Ingrid Pia Suki Uma Amelia Beatrix
Chloe Delia Eliza Frida Hannah Iris Jenny Katie Leah Maggie Nancy Olivia Phoebe Ruth Tara Wanda
"""
_HE_NAMES = """
Tom Sam Ben Max Leo Finn Milo Toby Ollie Jack Noah Liam Otto Hugo Jasper Felix Oscar Archie Alfie
Charlie George Harry Henry Freddie Benji Caleb Dexter Eddie Ezra Frankie Gus Hank Iggy Jonah Larry
Louie Marty Ned Nico Percy Rex Rory Sid Theo Ted Vinny Wally Zack Bertie Barnaby Ernie Gilbert
Oliver Percival Quincy Reggie Rufus Timmy Walter Wilbur Basil Cedric Elmer Gordon Hector Jeremy
Kevin Lenny Mortimer Norman Roland Victor Winston Boris Digby Ferdinand Humphrey Ivor Lionel Nigel
Rupert Vincent Arlo Beau Dudley Harvey Jed Kenny Ozzy Rocco Tobias Albert Bruno Conrad Dennis
Edgar Frank Gerald Ian Joe Leon Mick Neil Pete Ralph Stan Tim Vic
"""
_PET_NAMES = """
Pip Kit Quinn Mo Coco Bramble Bumble Chester Dizzy Fluff Fuzzy Hoot Nibbles Patch Pickles Pudsey
Ruffles Scamper Sniffy Socks Speedy Sparky Twiggy Whiskers Wiggles Ziggy Bubbles Dash Nutmeg Kip
Tumble Biscotti Fidget Dottie Jingle Sprout Thistle Marmalade Pumpernickel Sixpence Tinker
"""
_NAMES_FOR = {"she": _SHE_NAMES + _PET_NAMES, "he": _HE_NAMES + _PET_NAMES}

# Animals grouped by where they live and how they move, so a story keeps a fox in a den and lets
# a duck swim. The recognizer is lenient here and accepts any animal in any home.
_ANIMAL_KINDS = {
    "woodland": dict(
        nouns="fox rabbit bear deer wolf squirrel hedgehog badger mole mouse raccoon skunk "
        "chipmunk porcupine weasel moose boar shrew vole stoat lynx bunny",
        homes="den burrow hole cave house hut lodge hollow",
        regions="forest wood valley meadow",
        moves="ran hopped scampered trotted walked hurried crept wandered dashed",
    ),
    "bird": dict(
        nouns="owl robin sparrow crow wren finch bluebird blackbird thrush magpie jay "
        "woodpecker eagle hawk parrot pigeon dove lark starling swallow cuckoo kingfisher",
        homes="nest treetop birdhouse tree",
        regions="forest wood garden park orchard meadow",
        moves="flew fluttered hopped swooped glided soared",
    ),
    "farm": dict(
        nouns="pig cow goat sheep horse donkey hen rooster lamb calf pony kitten puppy cat dog "
        "turkey mule ox llama piglet chick duckling foal",
        homes="barn stable shed pen farmhouse coop kennel sty hutch",
        regions="farm village valley field orchard",
        moves="trotted ran walked waddled hurried skipped galloped wandered",
    ),
    "water": dict(
        nouns="frog toad otter beaver duck turtle fish crab seal newt swan goose walrus whale "
        "dolphin octopus shrimp lobster tadpole heron eel salmon trout penguin puffin",
        homes="pond river lake marsh swamp pool reef cove",
        regions="river lake sea marsh bay",
        moves="swam paddled splashed waddled hopped dived glided floated",
    ),
    "bug": dict(
        nouns="bee ant ladybug butterfly caterpillar spider snail beetle worm cricket "
        "grasshopper firefly moth dragonfly slug bumblebee earwig",
        homes="hive anthill web flower leaf log garden shell",
        regions="garden meadow field park orchard",
        moves="crawled buzzed flew fluttered crept wriggled hopped zoomed",
    ),
    "wild": dict(
        nouns="lion tiger elephant giraffe zebra monkey hippo rhino panda koala kangaroo camel "
        "gorilla leopard cheetah crocodile alligator sloth lemur meerkat ostrich flamingo "
        "toucan hyena jaguar wombat",
        homes="jungle cave tree grassland den burrow",
        regions="jungle savanna grassland desert",
        moves="walked ran stomped strolled trotted swung padded marched roamed",
    ),
}

# Children are heroes only; their noun fixes the pronoun.
_CHILD_KINDS = {"girl": "she", "boy": "he", "princess": "she", "prince": "he"}
_CHILD_KIND = dict(
    homes="house cottage hut castle farmhouse cabin palace tower",
    regions="village town city valley kingdom forest farm",
    moves="walked ran skipped hurried raced wandered marched tiptoed strolled dashed",
)

# Grown-ups who may come to help; a gendered noun fixes the pronoun, the rest draw one.
_HELPER_PEOPLE = {
    "farmer": None,
    "baker": None,
    "gardener": None,
    "fisherman": "he",
    "teacher": None,
    "king": "he",
    "queen": "she",
    "wizard": "he",
    "witch": "she",
    "fairy": None,
    "giant": None,
    "knight": None,
    "sailor": None,
    "shepherd": None,
    "miller": None,
    "woodcutter": None,
    "tailor": None,
    "potter": None,
    "doctor": None,
    "painter": None,
    "woman": "she",
    "man": "he",
}
_HELPER_PEOPLE_MOVES = "walked came hurried strolled wandered"

# Things a hero can treasure, lose, carry or find.
_OBJECTS = """
ball kite doll hat scarf boot mitten drum bell whistle flute book crayon pencil ring necklace
bracelet button marble shell feather stone pebble key box basket bucket spade cup bowl spoon
blanket pillow teddy boat cart wagon sled bicycle umbrella apron bag backpack lantern lamp candle
clock watch compass map mirror comb brush ribbon bow crown cape coat jacket sweater sock glove
belt trumpet violin guitar harp rattle puzzle robot train truck car plane rocket balloon jar
bottle net rope shovel rake hammer wheel medal trophy coin purse letter card picture painting
drawing photo flag badge crystal jewel gem pearl notebook paintbrush teacup teapot kettle
tambourine locket thimble hoop kazoo banjo telescope magnet pinwheel scooter skateboard tricycle
raincoat slipper bonnet shawl mug plate fork ladle tray present parcel sticker yoyo
"""

# (singular, plural): the singular follows "a"/"an", the plural fills lists and likings.
_FOODS = """
apple:apples pear:pears plum:plums cherry:cherries berry:berries strawberry:strawberries
blueberry:blueberries carrot:carrots turnip:turnips potato:potatoes cabbage:cabbages bean:beans
nut:nuts acorn:acorns seed:seeds cake:cakes pie:pies cookie:cookies biscuit:biscuits
muffin:muffins bun:buns sandwich:sandwiches egg:eggs grape:grapes banana:bananas orange:oranges
lemon:lemons melon:melons peach:peaches mango:mangoes pumpkin:pumpkins mushroom:mushrooms
walnut:walnuts hazelnut:hazelnuts chestnut:chestnuts radish:radishes cucumber:cucumbers
tomato:tomatoes onion:onions pancake:pancakes cupcake:cupcakes lollipop:lollipops
cracker:crackers pretzel:pretzels doughnut:doughnuts tart:tarts raisin:raisins
apricot:apricots fig:figs coconut:coconuts pineapple:pineapples sausage:sausages
dumpling:dumplings scone:scones bagel:bagels waffle:waffles olive:olives peanut:peanuts
almond:almonds parsnip:parsnips leek:leeks pea:peas lime:limes gooseberry:gooseberries
raspberry:raspberries blackberry:blackberries cranberry:cranberries
"""

# Goals pair a verb with targets it suits and with the adjectives that describe and block them:
# (verb, past, targets, describing adjectives, blocking adjectives).
_GOALS = (
    (
        "climb",
        "climbed",
        "hill mountain tree tower wall cliff",
        "tall high steep big rocky",
        "high steep tall slippery",
    ),
    ("cross", "crossed", "river stream lake valley bog", "wide deep big cold muddy", "wide deep fast cold"),
    ("visit", "visited", "town castle sea island market fair", "far big busy faraway", "far"),
    ("reach", "reached", "island castle lighthouse shore waterfall", "far distant faraway", "far"),
)

# Presents to make for family: (verb, past, things, adjectives, materials, ways to go wrong).
# Materials and failures are phrases separated by commas.
_MAKES = (
    (
        "bake",
        "baked",
        "cake pie muffin tart loaf pudding",
        "tasty sweet warm delicious",
        "flour, sugar, eggs, butter, honey, milk, berries",
        "burned, sank in the middle, came out flat, fell apart",
    ),
    (
        "make",
        "made",
        "card hat necklace crown basket picture kite",
        "pretty colorful fine",
        "paper, glue, string, beads, ribbons, feathers",
        "tore, fell apart, came out crooked",
    ),
    (
        "build",
        "built",
        "birdhouse bench raft sled swing boat",
        "strong sturdy fine",
        "wood, nails, sticks, rope, planks",
        "wobbled, broke, fell apart",
    ),
    (
        "paint",
        "painted",
        "picture sign portrait",
        "bright colorful pretty",
        "paints, brushes, paper",
        "smudged, came out messy",
    ),
    (
        "sew",
        "sewed",
        "quilt scarf doll blanket pillow",
        "soft cozy warm",
        "cloth, thread, buttons, wool",
        "came apart, came out crooked",
    ),
)

_LEXICON_WORDS = {
    "name": _SHE_NAMES + _HE_NAMES + _PET_NAMES,
    "object": _OBJECTS,
    "food": " ".join(pair.split(":")[0] for pair in _FOODS.split()),
    "food_plural": " ".join(pair.split(":")[1] for pair in _FOODS.split()),
    "food_mass": "honey cheese bread soup porridge jam milk corn rice butter flour sugar cream "
    "juice lettuce toast pudding stew custard",
    "family": "mother father mom dad grandma grandpa grandmother grandfather sister brother aunt uncle cousin granny",
    "he": "he she",
    "his": "his her",
    "him": "him her",
    "himself": "himself herself",
    "hero_adj": "little young small brave shy clever kind curious happy tiny fluffy busy gentle "
    "sleepy silly proud quiet playful friendly cheerful funny cheeky bold merry bouncy sweet "
    "nimble smart careful eager jolly lively spotty stripy speckled",
    "helper_adj": "wise old kind friendly gentle big strong clever helpful jolly patient tall "
    "cheerful brave quick quiet calm good smiling cheery generous caring thoughtful humble",
    "trait": "shy clever kind curious brave gentle cheerful helpful playful friendly quiet busy "
    "lazy silly proud careful polite smart funny bold clumsy sleepy grumpy noisy messy bossy "
    "cheeky thoughtful daring forgetful",
    "superlative": "smallest fastest slowest youngest quietest tallest busiest cleverest "
    "sleepiest happiest bravest kindest funniest loudest silliest hungriest shyest tiniest",
    "home_adj": "cozy little small warm snug tiny big old neat quiet dry pretty bright tidy humble lovely round",
    "region_adj": "green deep dark big quiet sunny old wild great peaceful busy pretty lovely shady sleepy misty",
    "cover": "rock stone bridge log bush hedge fence gate wall stump haystack woodpile bench "
    "cart boulder wheelbarrow ladder",
    "site": "pond stream river lake hill barn shed mill tower well road path cave waterfall "
    "garden field orchard cottage windmill lighthouse",
    "container": "barn shed cave hut mill tower cottage tent greenhouse",
    "spot_adj": "big old tall small dark mossy muddy shady little broken crooked high low long "
    "wooden green quiet sunny rocky grassy sandy cold empty huge giant",
    "tree_kind": "oak pine apple cherry maple birch elm beech willow plum pear chestnut fir holly ash cedar palm lemon",
    "field_place": "grass reeds bushes leaves flowers ferns weeds hay mud snow sand corn straw "
    "wheat nettles daisies rushes",
    "field_adj": "tall long thick deep wet soft green brown dry golden yellow wild cool",
    "prep_cover": "under behind beside near by below beneath",
    "prep_site": "near by beside behind",
    "object_adj": "red blue green yellow orange purple pink white black brown golden silver "
    "gray shiny little old new favorite special soft tiny bright striped spotted wooden "
    "woolly lucky magic sparkly precious",
    "happy_feel": "happy glad joyful cheerful proud excited delighted thankful grateful calm "
    "safe warm cozy content pleased thrilled",
    "sad_feel": "sad unhappy upset lonely worried scared afraid frightened nervous cross "
    "angry grumpy tired gloomy miserable confused sorry",
    "calm_feel": "calm safe warm cozy sleepy peaceful snug brave",
    "weather_adj": "sunny rainy windy snowy cloudy foggy stormy misty frosty cold warm hot "
    "bright gray wet chilly breezy lovely fine quiet damp beautiful",
    "season": "spring summer autumn winter",
    "day_part": "morning afternoon evening day",
    "search_verb": "looked searched peeked checked hunted",
    "say_verb": "said replied answered whispered called explained laughed",
    "ask_verb": "asked wondered called",
    "cry_verb": "cried shouted called exclaimed yelled squeaked",
    "sigh_verb": "sighed said whispered mumbled",
    "topic_plural": "dragons pirates stars ships castles trains giants fairies knights planets "
    "dinosaurs robots mountains oceans islands volcanoes rockets kings queens",
    "collectible": "shells pebbles feathers acorns leaves stones pinecones buttons marbles conkers ribbons",
    "flower_plural": "daisies tulips roses bluebells buttercups poppies sunflowers violets "
    "lilies dandelions primroses snowdrops",
    "water_site": "river lake pond stream sea",
    "sky_watch": "clouds stars birds boats rain moon",
    "weather_noun": "rain snow sun wind moonlight",
    "song_adj": "happy little silly sleepy old sweet soft merry funny",
    "countable_plural": "stars clouds leaves boats sheep birds",
    "number": "two three four five six seven eight nine ten",
    "heart_adj": "kind big warm good gentle",
    "voice_adj": "soft loud sweet small squeaky deep gentle happy tiny",
    "sound": "noise squeak rustle splash crash thump buzz whistle cry giggle bang creak "
    "crackle hiss rumble sob snore snuffle squawk knock chirp",
    "sound_adj": "strange little loud soft funny sad tiny",
    "game": "tag catch hopscotch leapfrog ball",
    "joy_act": "danced sang laughed clapped giggled cheered",
    "fail": "slipped fell tumbled stumbled",
    "bed_thing": "blanket quilt pillow bed covers",
    "lamp_adj": "little small warm bright golden",
    "brave_adj": "brave bold fearless daring",
    "path_adj": "secret short safe easy hidden narrow winding",
    "sky_plural": "stars clouds fireflies",
    "nice_adj": "lovely beautiful wonderful special perfect pretty",
    "sleep_adv": "soundly well peacefully",
    "junk_adj": "old muddy broken wet rusty dusty torn soggy",
    "speech_adv": "softly kindly gently quietly happily sadly loudly proudly bravely shyly warmly sleepily brightly",
    "tear_adj": "big little single fat",
    "friend_adj": "good best true new kind dear wonderful",
    "hug_adj": "big warm long tight",
    "eye_adj": "big bright kind sleepy shiny twinkly",
    "skill": "running singing climbing swimming digging counting drawing jumping hiding "
    "dancing whistling skipping painting baking juggling rhyming",
}

# Story roles reuse general classes under their own names, so that a story can bind them.
_ROLE_ALIASES = {
    "hero_name": "name",
    "helper_name": "name",
    "helper_he": "he",
    "helper_his": "his",
    "helper_him": "him",
    "hero_family": "family",
    "hero_move": "move",
    "helper_move": "move",
    "other_noun": "animal",
    "other_adj": "hero_adj",
    "any_object": "object",
    "any_home": "home_noun",
}


def _words(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(text.split()))  # keeps first-seen order, drops repeats


def _joined(parts) -> str:
    return " ".join(parts)


def _build_lexicon() -> dict[str, tuple[str, ...]]:
    lexicon = {name: _words(text) for name, text in _LEXICON_WORDS.items()}
    kinds = list(_ANIMAL_KINDS.values()) + [_CHILD_KIND]
    animals = _joined(kind["nouns"] for kind in _ANIMAL_KINDS.values())
    lexicon["animal"] = _words(animals)
    lexicon["hero_noun"] = _words(animals + " " + _joined(_CHILD_KINDS))
    lexicon["helper_noun"] = _words(animals + " " + _joined(_HELPER_PEOPLE))
    lexicon["home_noun"] = _words(_joined(kind["homes"] for kind in kinds))
    lexicon["region"] = _words(_joined(kind["regions"] for kind in kinds))
    lexicon["move"] = _words(_joined(kind["moves"] for kind in kinds) + " " + _HELPER_PEOPLE_MOVES)
    goal_columns = ("goal_verb", "goal_past", "goal_target", "goal_adj", "obstacle_adj")
    for k, name in enumerate(goal_columns):
        lexicon[name] = _words(_joined(row[k] for row in _GOALS))
    make_columns = ("make_verb", "make_past", "made_thing", "made_adj")
    for k, name in enumerate(make_columns):
        lexicon[name] = _words(_joined(row[k] for row in _MAKES))
    for alias, source in _ROLE_ALIASES.items():
        lexicon[alias] = lexicon[source]
    return lexicon


_LEXICON = _build_lexicon()

# ---------------------------------------------------------------------------------------------
# Grammar: phrase rules and sentence rules, each a list of alternatives in the template EBNF.
# ---------------------------------------------------------------------------------------------


def _phrases(text: str) -> list[str]:
    return [p.strip() for p in text.split(",")]


_PHRASE_RULES: dict[str, list[str]] = {
    # Noun phrases are listed without [optional] parts so that a pronoun is only one choice in
    # four: sentences that say "she" leave few slots open and would repeat across a corpus.
    "hero": ["the <hero_noun>", "the <hero_adj> <hero_noun>", "<hero_name>", "<he>"],
    "hero_named": ["the [<hero_adj>] <hero_noun>", "<hero_name>"],
    "hero_obj": ["the [<hero_adj>] <hero_noun>", "<hero_name>", "<him>"],
    "hero_call": ["<hero_name>", "little <hero_noun>", "little one", "my friend"],
    "hero_intro": ["<hero_intro_plain>", "<hero_intro_named>"],
    "hero_intro_plain": ["a [<hero_adj>] <hero_noun>"],
    "hero_intro_named": ["a [<hero_adj>] <hero_noun> ( named | called ) <hero_name>"],
    "helper": [
        "the <helper_noun>",
        "the <helper_adj> <helper_noun>",
        "<helper_name>",
        "<helper_he>",
    ],
    "helper_named": ["the [<helper_adj>] <helper_noun>", "<helper_name>"],
    "helper_obj": ["the [<helper_adj>] <helper_noun>", "<helper_name>", "<helper_him>"],
    "helper_call": ["<helper_name>", "<helper_adj> <helper_noun>", "my friend"],
    "helper_intro": ["<helper_intro_plain>", "<helper_intro_named>"],
    "helper_intro_plain": ["a [<helper_adj>] <helper_noun>"],
    "helper_intro_named": ["a [<helper_adj>] <helper_noun> ( named | called ) <helper_name>"],
    "home": ["a [<home_adj>] <home_noun> [<home_where>]"],
    "home_where": [
        "( in | near | by ) the [<region_adj>] <region>",
        "at the edge of the <region>",
        "( near | by | beside ) a [<spot_adj>] <site>",
        "under a [<spot_adj>] <tree_kind> tree",
    ],
    "spot": [
        "<prep_cover> the [<spot_adj>] <cover>",
        "<prep_cover> the [<spot_adj>] <tree_kind> tree",
        "<prep_site> the [<spot_adj>] <site>",
        "in the [<field_adj>] <field_place>",
        "inside the [<spot_adj>] <container>",
    ],
    "transition": [
        "after a while",
        "later that day",
        "the next morning",
        "soon",
        "at first",
        "that afternoon",
        "a little later",
        "before long",
    ],
    "when": ["every ( day | morning | evening | afternoon | week | spring | summer )"],
    "hobby": [
        "sing songs [<spot>]",
        "play <game> [<spot>]",
        "read books about <topic_plural>",
        "draw pictures of <topic_plural>",
        "dig in the ( mud | sand | soil | garden )",
        "climb ( trees | rocks | hills )",
        "collect <collectible>",
        "pick <flower_plural>",
        "watch the <sky_watch>",
        "count the <countable_plural>",
        "jump in ( puddles | piles of leaves )",
        "( swim | splash ) in the <water_site>",
        "roll in the [<field_adj>] <field_place>",
        "dance in the <weather_noun>",
        "bake <food_plural> for ( friends | breakfast )",
        "look for <collectible> <spot>",
        "tell stories about <topic_plural>",
        "explore the [<region_adj>] <region>",
        "hum <song_adj> songs",
    ],
    "together_act": [
        "sang songs",
        "picked <flower_plural>",
        "raced to the <site>",
        "splashed in the <water_site>",
        "shared a <food>",
        "watched the <sky_plural>",
        "told stories about <topic_plural>",
        "danced in the <weather_noun>",
        "looked for <collectible>",
        "ate <food_plural> and <food_mass>",
        "rolled in the [<field_adj>] <field_place>",
    ],
    "sky_clause": [
        "the ( wind | breeze ) was whistling through the <field_place>",
        "it had rained all night and the ( grass | ground | path ) was wet",
        "the sun was ( shining | setting | rising ) over the [<spot_adj>] <site>",
        "the moon was ( rising | glowing ) over the [<spot_adj>] <site>",
        "the stars were twinkling over the [<spot_adj>] <site>",
        "the wind was blowing through the [<field_adj>] <field_place>",
        "the ( rain | snow ) was falling on the [<spot_adj>] <site>",
        "the clouds were drifting over the [<spot_adj>] <site>",
        "the sky was ( blue | gray | pink ) above the [<spot_adj>] <site>",
    ],
    "nature_clause": [
        "the birds were singing in the <tree_kind> trees",
        "the bees were buzzing around the <flower_plural>",
        "the frogs were croaking in the <water_site>",
        "the crickets were chirping in the [<field_adj>] <field_place>",
        "the leaves were rustling in the ( wind | breeze )",
        "the <flower_plural> were blooming by the <site>",
        "the <tree_kind> trees were swaying in the ( wind | breeze )",
        "the river was bubbling past the [<spot_adj>] <site>",
        "the owls were hooting in the <tree_kind> trees",
        "the squirrels were chattering in the <tree_kind> trees",
        "the ducks were quacking on the <water_site>",
        "the sheep were bleating in the [<field_adj>] <field_place>",
        "the butterflies were dancing over the <flower_plural>",
        "the puddles were sparkling on the [<spot_adj>] path",
    ],
    "fear": [
        "the ( dark | night | wind )",
        "( thunder | storms | shadows | spiders | bees | owls )",
        "loud noises",
        "the ( deep | dark | cold ) water",
        "the ( big | dark ) woods",
        "the ( old | wobbly ) bridge",
        "the dark cellar",
    ],
    "fail_phrase": [
        "<fail>",
        "got tired",
        "had to stop",
        "could not do it",
        "was too small",
        "got scared",
    ],
    "material": _phrases(", ".join(row[4] for row in _MAKES)),
    "made_fail": _phrases(", ".join(row[5] for row in _MAKES)),
    "needs": ["<material> , <material> and <material>"],
    "both": ["<hero_named> and <helper_named>"],
    "other_call": ["( little | dear | kind ) <other_noun>"],
    "fear_when": ["at night", "in the dark", "after dark", "when <he> was alone"],
    "helper_doing": [
        "carrying a basket of <food_plural>",
        "humming a <song_adj> song",
        "on <helper_his> way to the <site>",
        "looking for <collectible>",
    ],
    "busy_with": [
        "( eating | gathering | counting | washing ) <food_plural>",
        "( gathering | counting | sorting ) <collectible>",
        "building a new <any_home>",
    ],
    "other": ["the [<other_adj>] <other_noun>"],
    "other_named": ["the [<other_adj>] <other_noun>"],
    "stuck_where": [
        "in the ( mud | snow | sand | reeds | ice )",
        "up a [tall] <tree_kind> tree",
        "in a ( deep | dark | muddy ) hole",
        "in a ( thorny | prickly ) bush",
        "under a ( fallen | heavy ) branch",
        "between two ( rocks | logs )",
        "on a ( high | narrow ) ledge",
        "in an old fishing net",
        "on the roof of the <container>",
    ],
    "rescue_tool": [
        "( long | strong ) ( rope | stick | branch | ladder | pole )",
        "( big | sturdy ) ( basket | plank )",
    ],
    "habit": [
        "woke up early",
        "shared <his> <food_plural>",
        "said please and thank you",
        "helped <his> <family> in the ( garden | kitchen )",
        "tidied up <his> <home_noun>",
        "sang in the ( bath | morning )",
        "wanted to know why",
    ],
}


def _speech(speaker: str, content: str, mark: str, verb: str) -> list[str]:
    """Both orders of a line of dialogue: the quote first, or the speaker first.

    After a quote the speaker is never a pronoun ("said the owl", not "said she").
    """
    inner_mark = "," if mark == "." else mark
    return [
        f'" {content} {inner_mark} " <{verb}> <{speaker}_named> [<speech_adv>] .',
        f'<{speaker}> <{verb}> [<speech_adv>] , " {content} {mark} "',
    ]


def _say(speaker: str, content: str, verb: str = "say_verb") -> list[str]:
    return _speech(speaker, content, ".", verb)


def _ask(speaker: str, content: str) -> list[str]:
    return _speech(speaker, content, "?", "ask_verb")


def _cry(speaker: str, content: str) -> list[str]:
    return _speech(speaker, content, "!", "cry_verb")


_SENTENCE_RULES: dict[str, list[str]] = {
    # Shared beats.
    "opening": [
        "once upon a time , <hero_intro> lived in <home> .",
        "once upon a time , there was <hero_intro> who lived in <home> .",
        "there was once <hero_intro> who lived in <home> .",
        "long ago , <hero_intro> lived in <home> .",
        "one <weather_adj> [<season>] morning , <hero_intro> woke up in <home> .",
        "in a [<region_adj>] <region> [far away] , there lived <hero_intro> .",
        "<hero_intro> lived in <home> .",
    ],
    "describe": [
        "<hero> loved to <hobby> .",
        "every day , <hero> liked to <hobby> .",
        "<hero> was [very] <trait> and [very] <trait> .",
        "<hero_name> was a [very] <trait> [<hero_adj>] <hero_noun> .",
        "<hero> had a <heart_adj> heart , a <voice_adj> voice and <eye_adj> eyes .",
        "<hero> lived with <his> <family> and <his> <family> .",
        "<hero> was the <superlative> <hero_noun> in the whole <region> .",
        "<hero> liked <food_plural> and <food_plural> more than anything .",
        "<hero> liked to eat <food_mass> with <food_plural> <spot> .",
        "<hero> always <habit> .",
        "<hero> was good at <skill> and <skill> .",
        "<hero> was not very good at <skill> , but <he> always tried .",
    ],
    "weather": [
        "<sky_clause> and <nature_clause> .",
        "it was a <weather_adj> [and <weather_adj>] <season> <day_part> , and <nature_clause> .",
        "outside , <sky_clause> and <nature_clause> .",
        "the <season> <day_part> was <weather_adj> and <weather_adj> , and <sky_clause> .",
    ],
    "sad": [
        "<hero> felt [very] <sad_feel> and <sad_feel> .",
        "<hero> was so <sad_feel> that <he> began to cry <spot> .",
        "<hero> sat down <spot> and ( cried | sighed ) .",
        "a <tear_adj> tear rolled down <his> cheek as <he> sat <spot> .",
        *_ask("hero", "( oh dear | oh no ) , what shall I do"),
    ],
    "glad": [
        "<hero> felt so <happy_feel> .",
        "<hero> was <happy_feel> again .",
        "<hero> smiled from ear to ear [and <joy_act>] .",
        "<hero> was so <happy_feel> that <he> <joy_act> .",
        "<both> <joy_act> together .",
        "<hero> laughed and ( clapped <his> hands | jumped for joy | spun around | did a little dance ) .",
    ],
    "helper_arrives": [
        "then <hero> met <helper_intro> .",
        "just then , <helper_intro> <helper_move> by [<helper_doing>] .",
        "soon , <hero> met <helper_intro> <spot> .",
        "along came <helper_intro> [<helper_doing>] .",
        "on the way , <hero> met <helper_intro> .",
        "then <hero> saw <helper_intro> <spot> .",
    ],
    "helper_asks": _ask(
        "helper",
        "( what is wrong | why are you so <sad_feel> | why are you crying | can I help you "
        "| what is the matter ) , <hero_call>",
    ),
    "thanks": [
        *_cry("hero", "thank you , <helper_call>"),
        "<hero> hugged <helper_obj> and said thank you .",
        "<hero> gave <helper_obj> a <food> to say thank you .",
        "<hero> thanked <helper_obj> again and again .",
        *_say("hero", "you are a ( true | good | kind ) friend , <helper_call>"),
    ],
    "the_end": ["the end ."],
    # A treasured object is lost and found.
    "lost_owns": [
        "<hero> had a <object_adj> <object> that <he> loved very much .",
        "<hero> loved <his> <object_adj> <object> more than anything .",
        "every day , <hero> played with <his> <object_adj> <object> <spot> .",
        "<his> <hero_family> had given <him> a <object_adj> <object> for <his> birthday .",
        "<hero> took <his> <object_adj> <object> everywhere <he> went .",
    ],
    "lost_loses": [
        "one day , <hero> could not find <his> <object> .",
        "but one <weather_adj> <day_part> , <his> <object> was gone !",
        "one day , <hero> lost <his> <object_adj> <object> <spot> .",
        "one <weather_adj> day , the wind blew <his> <object> away ( over the <site> "
        "| into the <field_place> | up into the <tree_kind> tree ) .",
        "<transition> , <hero> looked for <his> <object> , but it was gone .",
    ],
    "lost_asks": [
        *_ask(
            "hero",
            "( where is my [<object_adj>] <object> | has anyone seen my [<object_adj>] <object> "
            "| where did my <object> go | who took my [<object_adj>] <object> )",
        ),
        *_cry("hero", "( oh no , my <object> is gone | help , I have lost my <object> )"),
    ],
    "lost_search": [
        "<hero> <search_verb> <spot> , but <his> <object> was not there .",
        "<hero> <search_verb> <spot> , but <he> only found <number> <collectible> .",
        "then <he> <search_verb> <spot> and <spot> .",
        "<hero> <search_verb> everywhere , from the <site> to the <site> , but <his> <object> "
        "was nowhere to be found .",
        "<transition> , <hero> <search_verb> <spot> , but <he> only found a [<junk_adj>] <any_object> .",
        "<hero> <hero_move> to the <site> and <search_verb> <spot> .",
    ],
    "lost_explains": _say(
        "hero",
        "( I have lost my <object_adj> <object> | I cannot find my <object> anywhere "
        "| my <object> is gone and I miss it )",
    ),
    "lost_helper_offers": [
        *_say(
            "helper",
            "( do not worry , <hero_call> | I will help you find it "
            "| I saw a <object_adj> <object> <spot> | let us look <spot> | maybe it is <spot> )",
        ),
        "<helper> said <helper_he> would help <hero_obj> look <spot> .",
    ],
    "lost_search_together": [
        "so <both> <search_verb> <spot> together .",
        "together , they <search_verb> <spot> and <spot> .",
    ],
    "lost_finds": [
        "at last , <hero> found <his> <object> <spot> .",
        "and there it was , <spot> , ( just where <helper_named> had said | safe and sound | as good as new ) !",
        "there was the <object_adj> <object> , <spot> !",
        "<helper> found the <object> <spot> and gave it back to <hero_obj> .",
    ],
    "lost_ending": [
        "and <hero> never lost <his> <object> again .",
        "from that day on , <hero> kept <his> <object> safe .",
        "from that day on , <both> were best friends .",
        "that night , <hero> went to sleep with <his> <object> ( close by | under <his> pillow | in <his> arms ) .",
        "<hero> never let go of <his> [<object_adj>] <object> again .",
    ],
    # A lonely hero looks for a friend.
    "lonely_state": [
        "but <hero> had no friends to ( play <game> | sing | share <food_plural> ) with .",
        "<hero> was [very] lonely , because <he> had no friends in the [<region_adj>] <region> .",
        "all the other animals played <game> together <spot> , but <hero> was always alone .",
        "<hero> often sat alone <spot> .",
        "nobody ever came to play with <hero_obj> in the [<region_adj>] <region> .",
    ],
    "lonely_wish": [
        "<hero> wished <he> had a friend to play <game> with <spot> .",
        *_say("hero", "I wish I had a friend", "sigh_verb"),
        "<hero> wanted a friend more than <food_plural> , more than <topic_plural> , more than anything .",
    ],
    "lonely_sets_out": [
        "one <weather_adj> <day_part> , <hero> <hero_move> to the <site> to look for a friend .",
        "one <weather_adj> <day_part> , <hero> decided to find a friend at the [<spot_adj>] <site> .",
        "so <hero> set off to find a friend <spot> .",
    ],
    "lonely_meets_other": [
        "<he> met a [<other_adj>] <other_noun> <spot> .",
        "soon , <hero> saw a [<other_adj>] <other_noun> <spot> .",
    ],
    "lonely_asks": _ask(
        "hero",
        "( will you be my friend | will you play with me | do you want to play <game> "
        "| can I play with you ) [ , <other_call> ]",
    ),
    "lonely_rejected": [
        "but the [<other_adj>] <other_noun> was too busy <busy_with> .",
        "but the [<other_adj>] <other_noun> ( ran | hurried | went ) off to the [<spot_adj>] <site> .",
        "the [<other_adj>] <other_noun> shook its head and went back to <busy_with> .",
    ],
    "lonely_meets_helper": [
        "then <hero> met <helper_intro> who was lonely too .",
        "then <helper_intro> <helper_move> over to <hero_obj> .",
    ],
    "lonely_helper_says": [
        *_ask(
            "helper",
            "( do you want to play with me | will you be my friend "
            "| why are you all alone , <hero_call> | can I play too )",
        ),
        *_say(
            "helper",
            "( I am new here and I have no friends | I will be your friend | let us play <game> | I am lonely too )",
        ),
    ],
    "lonely_hero_answers": _cry("hero", "( yes , please | yes , let us play <game> | hooray , a friend at last )"),
    "lonely_play": [
        "so <both> played <game> <spot> .",
        "<both> played <game> ( all day long | until the sun went down | all afternoon ) .",
        "together , they <together_act> and <together_act> .",
        "<both> <together_act> [<spot>] .",
    ],
    "lonely_ending": [
        "and <hero> was never lonely again .",
        "and <hero> was never lonely again , thanks to <helper_named> .",
        "from that day on , <both> were best friends .",
        "from that day on , <both> played together <when> .",
        "now <hero> had a [<friend_adj>] friend , and <he> was never alone ( again | in the <region> again ) .",
    ],
    # A hero sets out to climb, cross, visit or reach something.
    "goal_wants": [
        "<hero> wanted to <goal_verb> the [<goal_adj>] <goal_target> .",
        "one day , <hero> decided to <goal_verb> the [<goal_adj>] <goal_target> .",
        "more than anything , <hero> wanted to <goal_verb> the [<goal_adj>] <goal_target> .",
        "<hero> dreamed of the day <he> would <goal_verb> the [<goal_adj>] <goal_target> .",
    ],
    "goal_says": [
        *_say(
            "hero",
            "( I want to <goal_verb> the <goal_target> | one day I will <goal_verb> the "
            "<goal_target> | today I will <goal_verb> the [<goal_adj>] <goal_target> )",
        ),
        *_cry("hero", "( I can do it | I will never give up )"),
    ],
    "goal_obstacle": [
        "but the <goal_target> was too <obstacle_adj> , and <hero> ( did not know what to do "
        "| felt <sad_feel> | sat down <spot> ) .",
        "but the <goal_target> was very <obstacle_adj> , and <hero> was only ( small | little | young | tiny ) .",
        "the <goal_target> was so <obstacle_adj> that <hero> felt ( small | worried | nervous ) .",
    ],
    "goal_tries": [
        "<hero> tried to <goal_verb> the <goal_target> , but <he> <fail_phrase> .",
        "<transition> , <hero> tried again , but <he> <fail_phrase> <spot> .",
        "<hero> tried and tried <spot> , but it was no use .",
        "<hero> got tired and had to stop <spot> .",
    ],
    "goal_explains": _say(
        "hero",
        "( I want to <goal_verb> the <goal_target> , but it is too <obstacle_adj> "
        "| the <goal_target> is too <obstacle_adj> for me )",
    ),
    "goal_helper_plan": [
        *_say(
            "helper",
            "( let us <goal_verb> it together | I know a <path_adj> way | follow me , <hero_call> "
            "| do not give up , <hero_call> | you can do it , <hero_call> )",
        ),
        "<helper> showed <hero_obj> a <path_adj> path ( through the <region> | past the <site> | around the <site> ) .",
        "<helper> had a clever idea , and <helper_he> told it to <hero_obj> .",
    ],
    "goal_succeeds": [
        "step by step , <both> <goal_past> the <goal_target> .",
        "at last , <hero> <goal_past> the [<goal_adj>] <goal_target> !",
        "it was hard , but <hero> did not give up , and <he> <goal_past> the <goal_target> .",
        "with the help of <helper_named> , <hero> <goal_past> the <goal_target> .",
    ],
    "goal_after": [
        "<hero> could see the whole <region> from there .",
        *_cry("hero", "( we did it | hooray , we <goal_past> the <goal_target> )"),
    ],
    "goal_ending": [
        "<hero_named> was [very] proud of <himself> , and so was <his> <family> .",
        "and <hero> never gave up again , because <helper_named> had shown <him> the way .",
        "from that day on , <hero> knew that <he> could do hard things with a little help from <helper_named> .",
        "from that day on , <both> were best friends .",
    ],
    # A frightened hero is comforted.
    "scared_fear": [
        "<hero> was afraid of <fear> [<fear_when>] .",
        "<hero> was [very] scared of <fear> .",
        "more than anything , <hero> was afraid of <fear> .",
        "there was one thing <hero> was afraid of , and that was <fear> .",
    ],
    "scared_event": [
        "one <weather_adj> night , a big storm came over the [<region_adj>] <region> , and <hero> was all alone .",
        "that night , the wind howled around <his> <home_noun> and <hero> could not sleep .",
        "one night , <hero> heard a [<sound_adj>] <sound> <spot> .",
        "one evening , <hero> had to walk home ( through the <region> | past the <site> ) all alone .",
    ],
    "scared_reacts": [
        "<hero> hid under <his> <bed_thing> .",
        "<hero> shook all over and pulled <his> <bed_thing> up to <his> nose .",
        "<hero> could not sleep , so <he> counted <countable_plural> until <he> felt <calm_feel> .",
        *_cry("hero", "( I am so scared | help | please , somebody help me )"),
        *_ask("hero", "( what was that | who is there | what was that noise )"),
    ],
    "scared_helper_says": _say(
        "helper",
        "( do not be afraid , <hero_call> | <fear> cannot hurt you | I am here with you "
        "| I will stay with you until morning | there is nothing to fear , <hero_call> )",
    ),
    "scared_helper_acts": [
        "<helper> sat with <hero_obj> and sang a <song_adj> song .",
        "<helper> told <hero_obj> a story about a <brave_adj> <other_noun> .",
        "<helper> lit a <lamp_adj> lamp and sat down beside <hero_obj> .",
        "<helper> showed <hero_obj> the <sky_plural> in the sky .",
        "<helper> held <hero_obj> close until <he> felt better .",
    ],
    "scared_calm": [
        "soon , <hero> was not scared of <fear> anymore .",
        "<hero> smiled and closed <his> eyes , and <he> dreamed of <topic_plural> .",
        "<hero> felt <calm_feel> and <calm_feel> .",
        *_say("hero", "( I am not scared anymore | thank you for staying with me )"),
    ],
    "scared_ending": [
        "and <hero> was never afraid of <fear> again .",
        "from that night on , <hero> slept <sleep_adv> in <his> [<home_adj>] <home_noun> .",
        "now , whenever <hero> felt scared , <he> thought of <helper_named> .",
        "from that day on , <both> were best friends .",
    ],
    # A hero frees a stranger who is stuck.
    "rescue_hears": [
        "one <weather_adj> <day_part> , <hero> heard a ( cry | call | squeak | shout ) for help <spot> .",
        "one day , <hero> <hero_move> to the <site> and heard someone crying .",
        "on <his> way home , <hero> heard a [<sound_adj>] <sound> <spot> .",
    ],
    "rescue_finds": [
        "it was a [<other_adj>] <other_noun> , stuck <stuck_where> .",
        "there was a [<other_adj>] <other_noun> stuck <stuck_where> .",
        "<hero> found a [<other_adj>] <other_noun> stuck <stuck_where> .",
    ],
    "rescue_plea": [
        *_cry("other", "( help , I am stuck | please help me | I cannot get out )"),
        *_ask("other", "( can you help me | will you get me out of here )"),
    ],
    "rescue_tries": [
        "<hero> pulled and pulled , but the [<other_adj>] <other_noun> ( did not move "
        "| was stuck fast | did not budge ) .",
        "<hero> tried to reach the [<other_adj>] <other_noun> , but <he> was too ( small | short ) .",
        "<hero> could not free the [<other_adj>] <other_noun> all by <himself> .",
        "<hero> tried to help the [<other_adj>] <other_noun> , but <he> <fail_phrase> .",
    ],
    "rescue_plan": [
        *_say(
            "helper",
            "( I have a <rescue_tool> | let us pull together | hold on , little <other_noun> | I know what to do )",
        ),
        "<helper> ( fetched | brought | found ) a <rescue_tool> from the [<spot_adj>] <site> .",
    ],
    "rescue_done": [
        "together , <both> pulled the <other_noun> free .",
        "with a <rescue_tool> , <both> helped the [<other_adj>] <other_noun> get ( free | out ) .",
        "at last , the [<other_adj>] <other_noun> was free , and <hero> ( cheered | clapped | laughed ) !",
    ],
    "rescue_thanks": [
        *_cry("other", "( thank you , thank you | you saved me )"),
        "the <other_noun> was so <happy_feel> that it <joy_act> .",
    ],
    "rescue_ending": [
        "from that day on , <hero_named> , <helper_named> and the <other_noun> were best friends .",
        "<hero> felt proud that <he> had helped the [<other_adj>] <other_noun> .",
        "and the [<other_adj>] <other_noun> never got stuck <stuck_where> again .",
        "that night , <hero> told <his> <hero_family> all about the <other_noun> .",
    ],
    # A hero makes a present for family.
    "gift_wants": [
        "one day , <hero> wanted to <make_verb> a [<made_adj>] <made_thing> for <his> <hero_family> .",
        "<hero> wanted to make a ( special | big | little ) surprise for <his> <hero_family> , "
        "who was ( sad | sick | tired | busy ) .",
    ],
    "gift_plan": [
        "<hero> would <make_verb> a [<made_adj>] <made_thing> all by <himself> .",
        *_say("hero", "I will <make_verb> a [<made_adj>] <made_thing> for my <hero_family>"),
        "<hero> needed <needs> .",
        "first , <hero> found some <material> and some <material> .",
    ],
    "gift_attempt": [
        "<hero> tried to <make_verb> the <made_thing> all by <himself> , but it <made_fail> .",
        "but the <made_thing> <made_fail> , and <hero> ( sighed | frowned | groaned | felt <sad_feel> ) .",
        "<transition> , <hero> tried again with more <material> , but the <made_thing> <made_fail> again .",
    ],
    "gift_helper": [
        *_say(
            "helper",
            "( let me help you | you need more <material> | I will show you how "
            "| let us <make_verb> it together | try again , <hero_call> )",
        ),
        "<helper> showed <hero_obj> how to <make_verb> a <made_thing> .",
    ],
    "gift_success": [
        "together , <both> <make_past> a [<made_adj>] <made_thing> [<spot>] .",
        "this time , the <made_thing> was perfect , and <hero> ( smiled | cheered | clapped | laughed ) .",
        "<transition> , the [<made_adj>] <made_thing> was ready , and <both> ( smiled | cheered | clapped ) .",
    ],
    "gift_gives": [
        "<hero> gave the <made_thing> to <his> <hero_family> .",
        "<his> <hero_family> loved the [<made_adj>] <made_thing> and put it ( by the window "
        "| on the table | on the shelf | in a special place ) .",
        '" what a <nice_adj> <made_thing> [ , <hero_call> ] ! " said <his> <hero_family> [<speech_adv>] .',
        "<his> <hero_family> gave <hero_obj> a <hug_adj> hug and a <food> .",
    ],
    "gift_ending": [
        "from that day on , <hero> <make_past> a <made_thing> <when> .",
        "<hero> was very proud of <himself> , and <his> <hero_family> was proud too .",
        "from that day on , <both> were best friends .",
        "it was the best <day_part> <hero> had ever had , and <his> <family> thought so too .",
    ],
}

# ---------------------------------------------------------------------------------------------
# Template EBNF: parse into trees, then expand (generation), compile (recognition) or count.
# ---------------------------------------------------------------------------------------------

# Node kinds. Trees are tuples (kind, payload) so that expansion stays a cheap tuple walk.
_LIT, _SYM, _SEQ, _ALT, _OPT = range(5)
_TEMPLATE_TOKEN = re.compile(r"\[|\]|\(|\)|\||<[a-z_]+>|[^\s\[\]()|<>]+")
# The chance that an optional part appears; half keeps short and long forms equally common.
_OPTIONAL_PROBABILITY = 0.5


def _parse_template(text: str):
    """Parse one template into a tree; alternatives at the top level are allowed."""
    tokens = _TEMPLATE_TOKEN.findall(text)
    pos = 0

    def alternatives(closer: str | None):
        nonlocal pos
        options = [sequence()]
        while pos < len(tokens) and tokens[pos] == "|":
            pos += 1
            options.append(sequence())
        if closer is not None:
            if pos >= len(tokens) or tokens[pos] != closer:
                raise ValueError(f"template {text!r}: expected {closer!r}")
            pos += 1
        return options[0] if len(options) == 1 else (_ALT, tuple(options))

    def sequence():
        nonlocal pos
        items = []
        while pos < len(tokens) and tokens[pos] not in ("|", ")", "]"):
            tok = tokens[pos]
            pos += 1
            if tok == "(":
                items.append(alternatives(")"))
            elif tok == "[":
                items.append((_OPT, alternatives("]")))
            elif tok.startswith("<"):
                items.append((_SYM, tok[1:-1]))
            else:
                items.append((_LIT, tok))
        return items[0] if len(items) == 1 else (_SEQ, tuple(items))

    tree = alternatives(None)
    if pos != len(tokens):
        raise ValueError(f"template {text!r}: unbalanced {tokens[pos]!r}")
    return tree


def _parse_rule(alternatives: list[str]):
    trees = tuple(_parse_template(alt) for alt in alternatives)
    return trees[0] if len(trees) == 1 else (_ALT, trees)


_RULES = {name: _parse_rule(alts) for name, alts in {**_PHRASE_RULES, **_SENTENCE_RULES}.items()}
_RULES["sentence"] = (_ALT, tuple(_RULES[name] for name in _SENTENCE_RULES))
assert not set(_RULES) & set(_LEXICON), "rule and word class names must differ"

_ARTICLES = ("a", "an")
_PUNCTUATION = tuple('.,!?"')
_NO_SPACE_BEFORE = frozenset(".,!?")
_VOWELS = frozenset("aeiouAEIOU")


def _symbols(tree) -> Iterator[str]:
    kind, payload = tree
    if kind == _SYM:
        yield payload
    elif kind in (_SEQ, _ALT):
        for child in payload:
            yield from _symbols(child)
    elif kind == _OPT:
        yield from _symbols(payload)


def _literals(tree) -> Iterator[str]:
    kind, payload = tree
    if kind == _LIT:
        yield payload
    elif kind in (_SEQ, _ALT):
        for child in payload:
            yield from _literals(child)
    elif kind == _OPT:
        yield from _literals(payload)


def _check_grammar() -> None:
    """Fail at import if a template names an unknown symbol; that would be a silent dead slot."""
    for name, tree in _RULES.items():
        for symbol in _symbols(tree):
            if symbol not in _RULES and symbol not in _LEXICON:
                raise ValueError(f"rule {name!r} uses unknown symbol <{symbol}>")


_check_grammar()


def _build_vocabulary() -> frozenset[str]:
    words = {w for class_words in _LEXICON.values() for w in class_words}
    words |= {w for tree in _RULES.values() for w in _literals(tree) if w not in _PUNCTUATION}
    words |= set(_ARTICLES)  # the templates write "a"; "an" appears before vowels
    return frozenset(words)


_VOCABULARY = _build_vocabulary()
# Words that keep their capital letter anywhere in a sentence.
_PROPER = frozenset(_LEXICON["name"]) | {"I"}

# Each token becomes one private-use character, so word classes become character classes.
_PRIVATE_USE_START = 0xE000
_TOKEN_CHAR = {tok: chr(_PRIVATE_USE_START + k) for k, tok in enumerate(sorted(_VOCABULARY) + list(_PUNCTUATION))}


def _char_class(tokens) -> str:
    """A regex character class over the tokens' characters, with runs folded into ranges."""
    codes = sorted({ord(_TOKEN_CHAR[t]) for t in tokens})
    parts = []
    for _, run in itertools.groupby(enumerate(codes), key=lambda pair: pair[1] - pair[0]):
        run = [code for _, code in run]
        parts.append(chr(run[0]) if len(run) == 1 else f"{chr(run[0])}-{chr(run[-1])}")
    return "[" + "".join(parts) + "]"


_ARTICLE_CLASS = _char_class(_ARTICLES)


@functools.cache
def _rule_regex(name: str) -> str:
    return _tree_regex(_RULES[name])


def _tree_regex(tree) -> str:
    kind, payload = tree
    if kind == _LIT:
        return _ARTICLE_CLASS if payload in _ARTICLES else re.escape(_TOKEN_CHAR[payload])
    if kind == _SYM:
        if payload in _LEXICON:
            return _char_class(_LEXICON[payload])
        return "(?:" + _rule_regex(payload) + ")"
    if kind == _SEQ:
        return "".join(_tree_regex(child) for child in payload)
    if kind == _ALT:
        return "(?:" + "|".join(_tree_regex(child) for child in payload) + ")"
    return "(?:" + _tree_regex(payload) + ")?"


@functools.cache
def _compiled(name: str) -> re.Pattern:
    return re.compile(_rule_regex(name))


def _derives(name: str, tokens: tuple[str, ...]) -> bool:
    """True iff the rule or word class `name` derives exactly these (lowercase-form) tokens."""
    if name in _LEXICON:
        return len(tokens) == 1 and tokens[0] in _LEXICON[name]
    if any(tok not in _TOKEN_CHAR for tok in tokens):
        return False
    return _compiled(name).fullmatch("".join(_TOKEN_CHAR[t] for t in tokens)) is not None


def _count(tree, memo: dict[str, int]) -> int:
    """Number of derivations of a tree (an upper bound on distinct token strings)."""
    kind, payload = tree
    if kind == _LIT:
        return 1
    if kind == _SYM:
        if payload in _LEXICON:
            return len(_LEXICON[payload])
        if payload not in memo:
            memo[payload] = _count(_RULES[payload], memo)
        return memo[payload]
    if kind == _SEQ:
        total = 1
        for child in payload:
            total *= _count(child, memo)
        return total
    if kind == _ALT:
        return sum(_count(child, memo) for child in payload)
    return 1 + _count(payload, memo)


def sentence_space() -> int:
    """Estimate how many sentences the grammar can derive (derivations of `<sentence>`)."""
    return _count(_RULES["sentence"], {})


# ---------------------------------------------------------------------------------------------
# Surface form: tokens <-> text, shared by generator and recognizer.
# ---------------------------------------------------------------------------------------------

# Words, possibly with one apostrophe ("don't" is one token), or any other single character.
_TEXT_TOKEN = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|[^\sA-Za-z]")


def _capital_slots(tokens: list[str]) -> list[bool]:
    """Mark the words that must start with a capital: the first word and the first in a quote."""
    slots = [False] * len(tokens)
    expect_capital, in_quote = True, False
    for k, tok in enumerate(tokens):
        if tok == '"':
            in_quote = not in_quote
            expect_capital = expect_capital or in_quote
        elif tok[0].isalpha():
            slots[k] = expect_capital
            expect_capital = False
    return slots


def _render(tokens: list[str]) -> str:
    """Join tokens with canonical spacing: none before , . ! ? and none inside quotes' edges."""
    out, in_quote, after_opening = [], False, False
    for tok in tokens:
        opening = tok == '"' and not in_quote
        closing = tok == '"' and in_quote
        if out and not after_opening and not closing and tok not in _NO_SPACE_BEFORE:
            out.append(" ")
        out.append(tok)
        if tok == '"':
            in_quote = not in_quote
        after_opening = opening
    return "".join(out)


def _fix_articles(tokens: list[str]) -> None:
    """Choose "a" or "an" from the first letter of the next word (the lexicon avoids exceptions)."""
    for k in range(len(tokens) - 1):
        if tokens[k] in _ARTICLES:
            tokens[k] = "an" if tokens[k + 1][0] in _VOWELS else "a"


def _articles_agree(tokens: list[str]) -> bool:
    for k in range(len(tokens) - 1):
        if tokens[k] in _ARTICLES and (tokens[k] == "an") != (tokens[k + 1][0] in _VOWELS):
            return False
    return True


def _realize(tokens: list[str]) -> str:
    _fix_articles(tokens)
    slots = _capital_slots(tokens)
    shown = [tok[0].upper() + tok[1:] if slot else tok for tok, slot in zip(tokens, slots)]
    return _render(shown)


# ---------------------------------------------------------------------------------------------
# Generation: a story binds its cast, then expands a plot's beats with the shared grammar.
# ---------------------------------------------------------------------------------------------


@dataclass
class _Story:
    """What one story has fixed: symbol -> allowed derivations, and symbols it must not use."""

    bindings: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    forbidden: set[str] = field(default_factory=set)

    def bind(self, symbol: str, *options: str) -> None:
        """Restrict `symbol` to `options` (each a space-separated derivation the grammar allows)."""
        derivations = tuple(tuple(option.split()) for option in options)
        for tokens in derivations:
            if not _derives(symbol, tokens):
                raise ValueError(f"<{symbol}> does not derive {' '.join(tokens)!r}")
        self.bindings[symbol] = derivations


_NOTHING = (_SEQ, ())  # what an optional part becomes when all of it is forbidden


def _prune(tree, forbidden: frozenset[str], rules: dict):
    """Drop every alternative that needs a forbidden symbol; None if nothing is left."""
    kind, payload = tree
    if kind == _LIT:
        return tree
    if kind == _SYM:
        if payload in forbidden:
            return None
        if payload in _RULES and rules.get(payload, True) is None:
            return None
        return tree
    if kind == _SEQ:
        children = [_prune(child, forbidden, rules) for child in payload]
        return None if any(c is None for c in children) else (_SEQ, tuple(children))
    if kind == _ALT:
        children = tuple(c for c in (_prune(child, forbidden, rules) for child in payload) if c)
        if not children:
            return None
        return children[0] if len(children) == 1 else (_ALT, children)
    inner = _prune(payload, forbidden, rules)
    return _NOTHING if inner is None else (_OPT, inner)


@functools.cache
def _pruned_rules(forbidden: frozenset[str]) -> dict:
    """Every rule with the alternatives that need a forbidden symbol removed (None if empty)."""
    rules: dict = {}
    remaining = dict(_RULES)
    # Prune a rule once the rules it refers to are pruned; a pass without progress is a cycle,
    # which the regex compilation could not handle either.
    while remaining:
        settled = [
            name
            for name, tree in remaining.items()
            if {s for s in _symbols(tree) if s in _RULES and s not in forbidden} <= rules.keys()
        ]
        if not settled:
            raise ValueError(f"rules refer to each other in a cycle: {sorted(remaining)}")
        for name in settled:
            rules[name] = _prune(remaining.pop(name), forbidden, rules)
    return rules


def _expand(tree, story: _Story, rules: dict, rng: random.Random, out: list[str]) -> None:
    kind, payload = tree
    if kind == _LIT:
        out.append(payload)
    elif kind == _SYM:
        if payload in story.bindings:
            out.extend(rng.choice(story.bindings[payload]))
        elif payload in _LEXICON:
            out.append(rng.choice(_LEXICON[payload]))
        else:
            _expand(rules[payload], story, rules, rng, out)
    elif kind == _SEQ:
        for child in payload:
            _expand(child, story, rules, rng, out)
    elif kind == _ALT:
        _expand(rng.choice(payload), story, rules, rng, out)
    elif rng.random() < _OPTIONAL_PROBABILITY:
        _expand(payload, story, rules, rng, out)


def _sentence(rule: str, story: _Story, rng: random.Random) -> list[str]:
    rules = _pruned_rules(frozenset(story.forbidden))
    tokens: list[str] = []
    _expand(rules[rule], story, rules, rng, tokens)
    return tokens


def _pick_kind(rng: random.Random) -> tuple[str, dict, str | None]:
    """A hero: (noun, its kind's homes/regions/moves, fixed pronoun or None)."""
    # Children make up about a fifth of heroes, as in the picture books this imitates.
    if rng.random() < 0.2:
        noun = rng.choice(list(_CHILD_KINDS))
        return noun, _CHILD_KIND, _CHILD_KINDS[noun]
    kind = _ANIMAL_KINDS[rng.choice(list(_ANIMAL_KINDS))]
    return rng.choice(kind["nouns"].split()), kind, None


def _pick_helper(rng: random.Random, avoid: str) -> tuple[str, str, str | None]:
    """A helper: (noun, how it moves, fixed pronoun or None), never the hero's own kind."""
    # Mostly animals; a grown-up now and then keeps the cast varied.
    while True:
        if rng.random() < 0.25:
            noun = rng.choice(list(_HELPER_PEOPLE))
            moves, pronoun = _HELPER_PEOPLE_MOVES, _HELPER_PEOPLE[noun]
        else:
            kind = _ANIMAL_KINDS[rng.choice(list(_ANIMAL_KINDS))]
            noun, moves, pronoun = rng.choice(kind["nouns"].split()), kind["moves"], None
        if noun != avoid:
            return noun, moves, pronoun


_PRONOUNS = {"he": ("he", "his", "him", "himself"), "she": ("she", "her", "her", "herself")}
# Share of heroes and helpers introduced with a name ("a fox named Pip").
_NAMED_SHARE = 0.6


def _cast_name(story: _Story, role: str, pronoun: str, rng: random.Random, avoid: str) -> str:
    """Name a role (or leave it nameless) and forbid the introduction that would not fit."""
    name = rng.choice([n for n in _NAMES_FOR[pronoun].split() if n != avoid])
    if rng.random() < _NAMED_SHARE:
        story.bind(f"{role}_name", name)
        story.forbidden.add(f"{role}_intro_plain")
        return name
    story.forbidden.add(f"{role}_name")
    return ""


def _cast_hero(story: _Story, rng: random.Random) -> tuple[str, str]:
    """Bind the hero; returns (noun, name or "")."""
    hero, kind, pronoun = _pick_kind(rng)
    pronoun = pronoun or rng.choice(tuple(_PRONOUNS))
    for symbol, word in zip(("he", "his", "him", "himself"), _PRONOUNS[pronoun]):
        story.bind(symbol, word)
    story.bind("hero_noun", hero)
    story.bind("hero_adj", rng.choice(_LEXICON["hero_adj"]))
    story.bind("home_noun", rng.choice(kind["homes"].split()))
    story.bind("region", rng.choice(kind["regions"].split()))
    story.bind("hero_move", *kind["moves"].split())
    story.bind("hero_family", rng.choice(_LEXICON["family"]))
    return hero, _cast_name(story, "hero", pronoun, rng, avoid="")


def _cast_helper(story: _Story, rng: random.Random, hero: str, hero_name: str) -> str:
    """Bind a helper of another kind and name than the hero; returns its noun."""
    helper, moves, pronoun = _pick_helper(rng, avoid=hero)
    pronoun = pronoun or rng.choice(tuple(_PRONOUNS))
    for symbol, word in zip(("helper_he", "helper_his", "helper_him"), _PRONOUNS[pronoun]):
        story.bind(symbol, word)
    story.bind("helper_noun", helper)
    story.bind("helper_adj", rng.choice(_LEXICON["helper_adj"]))
    story.bind("helper_move", *moves.split())
    _cast_name(story, "helper", pronoun, rng, avoid=hero_name)
    return helper


def _cast_props(story: _Story, rng: random.Random, hero: str, helper: str) -> None:
    """The treasured object, the stranger in the lonely and rescue plots, and the fear."""
    story.bind("object", rng.choice(_LEXICON["object"]))
    story.bind("object_adj", rng.choice(_LEXICON["object_adj"]))
    story.bind("other_noun", rng.choice([a for a in _LEXICON["animal"] if a not in (hero, helper)]))
    story.bind("other_adj", rng.choice(_LEXICON["other_adj"]))
    story.bind("fear", " ".join(_sentence("fear", story, rng)))
    story.bind("stuck_where", " ".join(_sentence("stuck_where", story, rng)))


# Weather words a story may use; a few keep one story from being both sunny and snowy too often.
_WEATHER_PER_STORY = 3


def _cast_setting(story: _Story, rng: random.Random) -> None:
    story.bind("season", rng.choice(_LEXICON["season"]))
    story.bind("weather_adj", *rng.sample(_LEXICON["weather_adj"], _WEATHER_PER_STORY))


def _cast_goal(story: _Story, rng: random.Random) -> None:
    verb, past, targets, adjs, blocks = rng.choice(_GOALS)
    story.bind("goal_verb", verb)
    story.bind("goal_past", past)
    story.bind("goal_target", rng.choice(targets.split()))
    story.bind("goal_adj", rng.choice(adjs.split()))
    story.bind("obstacle_adj", rng.choice(blocks.split()))


def _cast_gift(story: _Story, rng: random.Random) -> None:
    verb, past, things, adjs, materials, failures = rng.choice(_MAKES)
    story.bind("make_verb", verb)
    story.bind("make_past", past)
    story.bind("made_thing", rng.choice(things.split()))
    story.bind("made_adj", *adjs.split())
    materials = _phrases(materials)
    story.bind("material", *materials)
    story.bind("needs", "{} , {} and {}".format(*rng.sample(materials, 3)))
    story.bind("made_fail", rng.choice(_phrases(failures)))


def _cast(rng: random.Random) -> _Story:
    """Bind a hero, a helper and the props that every plot may use."""
    story = _Story()
    hero, hero_name = _cast_hero(story, rng)
    helper = _cast_helper(story, rng, hero, hero_name)
    _cast_props(story, rng, hero, helper)
    _cast_setting(story, rng)
    _cast_goal(story, rng)
    _cast_gift(story, rng)
    return story


# A plot is a list of beats: (chance the beat is told, sentence rules to pick one from).
_PLOTS = {
    "lost": (
        (1.0, ("opening",)),
        (0.4, ("describe",)),
        (1.0, ("lost_owns",)),
        (0.2, ("weather",)),
        (1.0, ("lost_loses",)),
        (0.4, ("sad",)),
        (0.5, ("lost_asks",)),
        (1.0, ("lost_search",)),
        (0.3, ("lost_search",)),
        (1.0, ("helper_arrives",)),
        (0.4, ("helper_asks",)),
        (0.3, ("lost_explains",)),
        (0.8, ("lost_helper_offers",)),
        (0.4, ("lost_search_together",)),
        (1.0, ("lost_finds",)),
        (0.5, ("thanks",)),
        (0.3, ("glad",)),
        (1.0, ("lost_ending",)),
        (0.08, ("the_end",)),
    ),
    "lonely": (
        (1.0, ("opening",)),
        (0.4, ("describe",)),
        (1.0, ("lonely_state",)),
        (0.5, ("lonely_wish",)),
        (0.2, ("weather",)),
        (1.0, ("lonely_sets_out",)),
        (1.0, ("lonely_meets_other",)),
        (0.8, ("lonely_asks",)),
        (1.0, ("lonely_rejected",)),
        (0.4, ("sad",)),
        (1.0, ("lonely_meets_helper", "helper_arrives")),
        (0.8, ("lonely_helper_says",)),
        (0.5, ("lonely_hero_answers",)),
        (1.0, ("lonely_play",)),
        (0.3, ("glad",)),
        (1.0, ("lonely_ending",)),
        (0.08, ("the_end",)),
    ),
    "goal": (
        (1.0, ("opening",)),
        (0.4, ("describe",)),
        (0.2, ("weather",)),
        (1.0, ("goal_wants",)),
        (0.4, ("goal_says",)),
        (1.0, ("goal_obstacle",)),
        (1.0, ("goal_tries",)),
        (0.3, ("sad",)),
        (1.0, ("helper_arrives",)),
        (0.4, ("helper_asks",)),
        (0.4, ("goal_explains",)),
        (1.0, ("goal_helper_plan",)),
        (1.0, ("goal_succeeds",)),
        (0.5, ("goal_after",)),
        (0.3, ("thanks",)),
        (1.0, ("goal_ending",)),
        (0.08, ("the_end",)),
    ),
    "scared": (
        (1.0, ("opening",)),
        (0.4, ("describe",)),
        (1.0, ("scared_fear",)),
        (1.0, ("scared_event",)),
        (0.3, ("weather",)),
        (1.0, ("scared_reacts",)),
        (0.4, ("scared_reacts",)),
        (1.0, ("helper_arrives",)),
        (0.4, ("helper_asks",)),
        (1.0, ("scared_helper_says",)),
        (1.0, ("scared_helper_acts",)),
        (1.0, ("scared_calm",)),
        (0.3, ("thanks",)),
        (1.0, ("scared_ending",)),
        (0.08, ("the_end",)),
    ),
    "gift": (
        (1.0, ("opening",)),
        (0.4, ("describe",)),
        (0.2, ("weather",)),
        (1.0, ("gift_wants",)),
        (0.7, ("gift_plan",)),
        (1.0, ("gift_attempt",)),
        (0.4, ("sad",)),
        (1.0, ("helper_arrives",)),
        (0.3, ("helper_asks",)),
        (1.0, ("gift_helper",)),
        (1.0, ("gift_success",)),
        (1.0, ("gift_gives",)),
        (0.3, ("glad",)),
        (1.0, ("gift_ending",)),
        (0.08, ("the_end",)),
    ),
    "rescue": (
        (1.0, ("opening",)),
        (0.4, ("describe",)),
        (0.2, ("weather",)),
        (1.0, ("rescue_hears",)),
        (1.0, ("rescue_finds",)),
        (0.7, ("rescue_plea",)),
        (1.0, ("rescue_tries",)),
        (0.4, ("rescue_tries",)),
        (1.0, ("helper_arrives",)),
        (0.3, ("helper_asks",)),
        (1.0, ("rescue_plan",)),
        (1.0, ("rescue_done",)),
        (0.7, ("rescue_thanks",)),
        (0.3, ("thanks",)),
        (1.0, ("rescue_ending",)),
        (0.08, ("the_end",)),
    ),
}

# Bounds a story must meet; drafts outside them are redrawn from the same stream.
MIN_SENTENCES, MAX_SENTENCES = 6, 14
MIN_WORDS, MAX_WORDS = 90, 220


def _draft(rng: random.Random) -> list[list[str]]:
    story = _cast(rng)
    plot = _PLOTS[rng.choice(list(_PLOTS))]
    sentences = []
    for chance, rules in plot:
        if chance >= 1.0 or rng.random() < chance:
            sentences.append(_sentence(rng.choice(rules), story, rng))
    return sentences


def _word_count(tokens: list[str]) -> int:
    return sum(1 for tok in tokens if tok[0].isalpha())


def generate_story(rng: random.Random) -> str:
    """Write one story of 6-14 sentences and 90-220 words, drawing all choices from `rng`."""
    while True:
        sentences = _draft(rng)
        words = sum(_word_count(s) for s in sentences)
        if MIN_SENTENCES <= len(sentences) <= MAX_SENTENCES and MIN_WORDS <= words <= MAX_WORDS:
            return " ".join(_realize(s) for s in sentences)


def iter_corpus(seed: int = 0) -> Iterator[str]:
    """An endless stream of stories, the same for the same seed."""
    rng = random.Random(seed)
    while True:
        yield generate_story(rng)


def generate_corpus(n_stories: int, seed: int = 0) -> list[str]:
    """The first `n_stories` stories of `iter_corpus(seed)`."""
    return list(itertools.islice(iter_corpus(seed), n_stories))


def vocabulary() -> frozenset[str]:
    """Every word (not punctuation) a story can contain; names keep their capital."""
    return _VOCABULARY


# ---------------------------------------------------------------------------------------------
# Recognition.
# ---------------------------------------------------------------------------------------------

_TERMINAL = frozenset(".!?")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences, keeping quoted dialogue with its speaker.

    A sentence ends after . ! or ? (and a closing quote right after it) unless the next word
    starts in lowercase, as in `"Help!" cried the fox.`. A trailing fragment without final
    punctuation is returned too, so that it can be counted as not accepted.
    """
    sentences, start, k, n = [], 0, 0, len(text)
    while k < n:
        if text[k] not in _TERMINAL:
            k += 1
            continue
        end = k + 1
        while end < n and text[end] in _TERMINAL:
            end += 1
        if end < n and text[end] == '"':
            end += 1
        rest = end
        while rest < n and text[rest].isspace():
            rest += 1
        if rest < n and text[rest].islower():
            k = end  # dialogue continues: "Help!" cried the fox.
            continue
        piece = text[start:end].strip()
        if piece:
            sentences.append(piece)
        start = k = end
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def _normalized_tokens(sentence: str) -> list[str] | None:
    """Tokens in lexicon case, or None if the surface form itself is wrong."""
    text = sentence.strip()
    tokens = _TEXT_TOKEN.findall(text)
    if not tokens or _render(tokens) != text:
        return None
    for k, slot in enumerate(_capital_slots(tokens)):
        tok = tokens[k]
        if not slot:
            continue
        if not tok[0].isupper():
            return None
        if tok not in _PROPER:
            tokens[k] = tok[0].lower() + tok[1:]
    return tokens


def sentence_accepted(sentence: str) -> bool:
    """True iff the grammar derives `sentence` (surrounding whitespace ignored)."""
    tokens = _normalized_tokens(sentence)
    if tokens is None or not _articles_agree(tokens):
        return False
    try:
        encoded = "".join(_TOKEN_CHAR[tok] for tok in tokens)
    except KeyError:
        return False  # a word outside the vocabulary
    return _compiled("sentence").fullmatch(encoded) is not None


def fluency(texts: list[str], corpus_sentences: set[str]) -> dict:
    """Score generated texts sentence by sentence against the grammar and a training corpus.

    Returns:
        {"sentences": count, "accepted": share derivable by the grammar, "novel": share of the
        accepted sentences absent from `corpus_sentences`, "distinct": share of distinct
        sentences among all}.
    """
    sentences = [s for text in texts for s in split_sentences(text)]
    accepted = [s for s in sentences if sentence_accepted(s)]
    novel = [s for s in accepted if s not in corpus_sentences]
    n = len(sentences)
    return {
        "sentences": n,
        "accepted": len(accepted) / n if n else 0.0,
        "novel": len(novel) / len(accepted) if accepted else 0.0,
        "distinct": len(set(sentences)) / n if n else 0.0,
    }
