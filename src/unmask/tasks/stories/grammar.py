"""The story grammar: templates, their tiny EBNF, and the engine that expands, compiles and counts them.

Notable features:
- One grammar drives both directions. Sentence templates are written in a tiny EBNF
  (`<symbol>`, `( a | b )`, `[ optional ]`) over the word classes of lexicon.py; the generator
  expands the parse trees and the recognizer compiles the very same trees into one regular
  expression, so the two cannot drift apart.
- Compiled rules work on words, not characters: each vocabulary word and punctuation mark maps
  to one private-use character, so a word class becomes a regex character class and a
  15-word sentence is matched as a 15-character string.
- Templates carry several independent slots (names, creatures, objects, places, feelings), so
  the sentence space (`sentence_space()`) dwarfs any corpus drawn from it and a model's accepted
  sentences can be measured for novelty.
- The surface form (capitals, "a"/"an", spacing around punctuation and quotes) is written by
  one set of functions here, which the generator and the recognizer share.
"""

from __future__ import annotations

import functools
import itertools
import random
import re
from collections.abc import Iterator, Sequence

from .lexicon import LEXICON, MAKES

# ---------------------------------------------------------------------------------------------
# Templates: phrase rules and sentence rules, each a list of alternatives in the template EBNF.
# ---------------------------------------------------------------------------------------------

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
    "material": [material for make in MAKES for material in make["materials"]],
    "made_fail": [failure for make in MAKES for failure in make["failures"]],
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
# Template EBNF: parse into trees, then compile (recognition), count or expand (generation).
# ---------------------------------------------------------------------------------------------

# Node kinds. Trees are tuples (kind, payload) so that expansion stays a cheap tuple walk.
_LIT, _SYM, _SEQ, _ALT, _OPT = range(5)
_TEMPLATE_TOKEN = re.compile(r"\[|\]|\(|\)|\||<[a-z_]+>|[^\s\[\]()|<>]+")


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


RULES = {name: _parse_rule(alts) for name, alts in {**_PHRASE_RULES, **_SENTENCE_RULES}.items()}
RULES["sentence"] = (_ALT, tuple(RULES[name] for name in _SENTENCE_RULES))
assert not set(RULES) & set(LEXICON), "rule and word class names must differ"

_ARTICLES = ("a", "an")
_PUNCTUATION = tuple('.,!?"')
_NO_SPACE_BEFORE = frozenset(".,!?")
_VOWELS = frozenset("aeiouAEIOU")


def symbols(tree) -> Iterator[str]:
    kind, payload = tree
    if kind == _SYM:
        yield payload
    elif kind in (_SEQ, _ALT):
        for child in payload:
            yield from symbols(child)
    elif kind == _OPT:
        yield from symbols(payload)


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
    for name, tree in RULES.items():
        for symbol in symbols(tree):
            if symbol not in RULES and symbol not in LEXICON:
                raise ValueError(f"rule {name!r} uses unknown symbol <{symbol}>")


_check_grammar()


def _build_vocabulary() -> frozenset[str]:
    words = {w for class_words in LEXICON.values() for w in class_words}
    words |= {w for tree in RULES.values() for w in _literals(tree) if w not in _PUNCTUATION}
    words |= set(_ARTICLES)  # the templates write "a"; "an" appears before vowels
    return frozenset(words)


_VOCABULARY = _build_vocabulary()


def vocabulary() -> frozenset[str]:
    """Every word (not punctuation) a story can contain; names keep their capital."""
    return _VOCABULARY


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
    return _tree_regex(RULES[name])


def _tree_regex(tree) -> str:
    kind, payload = tree
    if kind == _LIT:
        return _ARTICLE_CLASS if payload in _ARTICLES else re.escape(_TOKEN_CHAR[payload])
    if kind == _SYM:
        if payload in LEXICON:
            return _char_class(LEXICON[payload])
        return "(?:" + _rule_regex(payload) + ")"
    if kind == _SEQ:
        return "".join(_tree_regex(child) for child in payload)
    if kind == _ALT:
        return "(?:" + "|".join(_tree_regex(child) for child in payload) + ")"
    return "(?:" + _tree_regex(payload) + ")?"


@functools.cache
def _compiled(name: str) -> re.Pattern:
    return re.compile(_rule_regex(name))


def derives(name: str, tokens: Sequence[str]) -> bool:
    """True iff the rule or word class `name` derives exactly these (lowercase-form) tokens."""
    if name in LEXICON:
        return len(tokens) == 1 and tokens[0] in LEXICON[name]
    if any(tok not in _TOKEN_CHAR for tok in tokens):
        return False
    return _compiled(name).fullmatch("".join(_TOKEN_CHAR[t] for t in tokens)) is not None


def _count(tree, memo: dict[str, int]) -> int:
    """Number of derivations of a tree (an upper bound on distinct token strings)."""
    kind, payload = tree
    if kind == _LIT:
        return 1
    if kind == _SYM:
        if payload in LEXICON:
            return len(LEXICON[payload])
        if payload not in memo:
            memo[payload] = _count(RULES[payload], memo)
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
    return _count(RULES["sentence"], {})


# ---------------------------------------------------------------------------------------------
# Surface form: tokens <-> text, shared by generator and recognizer.
# ---------------------------------------------------------------------------------------------


def capital_slots(tokens: list[str]) -> list[bool]:
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


def render(tokens: list[str]) -> str:
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


def articles_agree(tokens: list[str]) -> bool:
    for k in range(len(tokens) - 1):
        if tokens[k] in _ARTICLES and (tokens[k] == "an") != (tokens[k + 1][0] in _VOWELS):
            return False
    return True


def realize(tokens: list[str]) -> str:
    _fix_articles(tokens)
    slots = capital_slots(tokens)
    shown = [tok[0].upper() + tok[1:] if slot else tok for tok, slot in zip(tokens, slots)]
    return render(shown)


# ---------------------------------------------------------------------------------------------
# Expansion: draw one derivation of a rule, with some symbols bound and some forbidden.
# ---------------------------------------------------------------------------------------------

# The chance that an optional part appears; half keeps short and long forms equally common.
_OPTIONAL_PROBABILITY = 0.5
_NOTHING = (_SEQ, ())  # what an optional part becomes when all of it is forbidden


def _prune(tree, forbidden: frozenset[str], rules: dict):
    """Drop every alternative that needs a forbidden symbol; None if nothing is left."""
    kind, payload = tree
    if kind == _LIT:
        return tree
    if kind == _SYM:
        if payload in forbidden:
            return None
        if payload in RULES and rules.get(payload, True) is None:
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
def pruned_rules(forbidden: frozenset[str]) -> dict:
    """Every rule with the alternatives that need a forbidden symbol removed (None if empty)."""
    rules: dict = {}
    remaining = dict(RULES)
    # Prune a rule once the rules it refers to are pruned; a pass without progress is a cycle,
    # which the regex compilation could not handle either.
    while remaining:
        settled = [
            name
            for name, tree in remaining.items()
            if {s for s in symbols(tree) if s in RULES and s not in forbidden} <= rules.keys()
        ]
        if not settled:
            raise ValueError(f"rules refer to each other in a cycle: {sorted(remaining)}")
        for name in settled:
            rules[name] = _prune(remaining.pop(name), forbidden, rules)
    return rules


def expand(tree, bindings: dict, rules: dict, rng: random.Random, out: list[str]) -> None:
    """Append one derivation of `tree` to `out`; bound symbols draw from `bindings`, the rest from `rules`."""
    kind, payload = tree
    if kind == _LIT:
        out.append(payload)
    elif kind == _SYM:
        if payload in bindings:
            out.extend(rng.choice(bindings[payload]))
        elif payload in LEXICON:
            out.append(rng.choice(LEXICON[payload]))
        else:
            expand(rules[payload], bindings, rules, rng, out)
    elif kind == _SEQ:
        for child in payload:
            expand(child, bindings, rules, rng, out)
    elif kind == _ALT:
        expand(rng.choice(payload), bindings, rules, rng, out)
    elif rng.random() < _OPTIONAL_PROBABILITY:
        expand(payload, bindings, rules, rng, out)
