#!/usr/bin/env python3
"""Generates the pretraining corpus of the bundled tiny GLM: Data/tiny-corpus/train.jsonl and eval.jsonl.

Every line is {"text": ...}, one short document. All text is produced here from templates and word lists written
for this project (no third-party text), so the corpus carries the project's licence (see Data/README.md).
The mix is what the later SFT/DPO/GRPO recipes build on:
- math:   equations ("37+45=82", "9*7=63", "61-18=43", "56/8=7", "4*6+3=27"), the same facts in words
          ("37 plus 45 is 82.", "The product of 9 and 7 is 63."), Q/A lines ("Q: What is 37 plus 45?\nA: 82"),
          counting and comparisons;
- word:   small one- and two-step word problems with the working and the answer;
- story:  short English stories and scenes from templates (people, places, objects, animals, actions, dialogue);
- zh:     short Chinese sentences, dialogues and word problems from templates (common characters);
- kv:     key: value records with questions about them, fixed world facts as Q/A, inventories with totals.
The documents never contain GLM's special-token strings (<|user|>, [gMASK], ...) and never the chat format:
that is what SFT teaches later.

Deterministic: the same seed gives byte-identical files.
Run: .venv/bin/python Scripts/make_tiny_corpus.py [--seed 0] [--train-docs 19000] [--eval-docs 600]
"""
import argparse
import json
import os
import random

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Data", "tiny-corpus")

# ----------------------------------------------------------------------------------------------------------------
# Word lists
# ----------------------------------------------------------------------------------------------------------------
GIRLS = ["Anna", "Clara", "Emma", "Lily", "Mia", "Sofia", "Grace", "Ella", "Chloe", "Ruby", "Nora", "Alice", "Lucy",
         "Zoe", "Hannah", "Maya", "Ivy", "Rose", "Julia", "Sara"]
BOYS = ["Ben", "David", "Tom", "Leo", "Sam", "Max", "Jack", "Noah", "Oscar", "Felix", "Henry", "Adam", "Hugo",
        "Liam", "Peter", "Owen", "Eli", "Ryan", "Daniel", "Lucas"]
PLACES = ["park", "market", "school", "library", "river", "forest", "kitchen", "garden", "station", "beach", "farm",
          "museum", "village", "harbor", "bakery", "zoo", "hill", "lake", "bridge", "shop", "castle", "field",
          "playground", "hospital", "cafe", "island", "mountain", "street", "classroom", "office"]
CITIES = ["Paris", "London", "Tokyo", "Beijing", "Rome", "Cairo", "Madrid", "Berlin", "Sydney", "Toronto", "Lima",
          "Oslo", "Seoul", "Delhi", "Nairobi", "Vienna", "Dublin", "Lisbon", "Moscow", "Shanghai"]
OBJECTS = ["apple", "book", "ball", "cup", "lamp", "chair", "box", "kite", "hat", "key", "coin", "pen", "bag",
           "shoe", "map", "clock", "basket", "bottle", "candle", "drum", "flower", "letter", "pencil", "plate",
           "ring", "rope", "shell", "spoon", "stone", "toy", "umbrella", "bell", "blanket", "brush", "card",
           "cookie", "egg", "feather", "jar", "ladder", "mirror", "orange", "pear", "picture", "pillow", "sock",
           "ticket", "towel", "truck", "whistle"]
PLURALS = {"box": "boxes", "brush": "brushes", "glass": "glasses", "peach": "peaches", "bus": "buses",
           "dish": "dishes", "fox": "foxes", "watch": "watches", "leaf": "leaves", "mouse": "mice",
           "sheep": "sheep", "fish": "fish", "child": "children", "person": "people", "shelf": "shelves", "strawberry": "strawberries",
           "puppy": "puppies", "cherry": "cherries", "butterfly": "butterflies", "wolf": "wolves"}
ANIMALS = ["cat", "dog", "bird", "fox", "rabbit", "horse", "cow", "duck", "frog", "mouse", "sheep", "goat", "owl",
           "bear", "lion", "fish", "turtle", "puppy", "butterfly", "wolf", "pig", "hen", "bee", "deer"]
FOODS = ["bread", "rice", "soup", "cake", "milk", "tea", "cheese", "honey", "noodles", "salad", "eggs", "fruit",
         "juice", "pie", "corn", "beans", "fish", "carrots", "potatoes", "pizza"]
COLORS = ["red", "blue", "green", "yellow", "white", "black", "brown", "purple", "orange", "pink", "gray", "gold"]
SIZES = ["small", "big", "tiny", "large", "little", "huge", "long", "short", "tall"]
QUALITIES = ["old", "new", "shiny", "soft", "heavy", "light", "warm", "cold", "clean", "dirty", "round", "broken",
             "strange", "pretty", "quiet", "noisy", "bright", "dark", "wooden", "wet", "dry", "empty", "full"]
FEELINGS = ["happy", "sad", "tired", "excited", "hungry", "surprised", "proud", "scared", "calm", "curious",
            "angry", "sleepy", "glad", "worried", "bored"]
TIMES = ["In the morning", "After lunch", "In the evening", "On Monday", "On Sunday", "Later that day",
         "The next day", "At noon", "Before dinner", "One afternoon", "Early in the morning", "That night",
         "On Friday", "After school", "In the spring", "In the winter", "On a rainy day", "On a sunny day"]
WEATHER = ["The sun was shining.", "It was raining.", "The wind was strong.", "It was a cold day.",
           "The sky was blue and clear.", "Snow covered the ground.", "It was warm and bright.",
           "Gray clouds filled the sky.", "A light rain was falling.", "The air was fresh and cool."]
RELATIVES = ["mother", "father", "sister", "brother", "grandmother", "grandfather", "aunt", "uncle", "teacher",
             "friend", "neighbor", "cousin"]
JOBS = ["teacher", "doctor", "farmer", "baker", "driver", "painter", "cook", "nurse", "pilot", "writer", "singer",
        "builder", "gardener", "student", "fisher"]
# (base, third person, past, -ing) for actions on an object.
OBJ_VERBS = [("find", "finds", "found", "finding"), ("carry", "carries", "carried", "carrying"),
             ("buy", "buys", "bought", "buying"), ("paint", "paints", "painted", "painting"),
             ("hold", "holds", "held", "holding"), ("clean", "cleans", "cleaned", "cleaning"),
             ("drop", "drops", "dropped", "dropping"), ("hide", "hides", "hid", "hiding"),
             ("sell", "sells", "sold", "selling"), ("open", "opens", "opened", "opening"),
             ("fix", "fixes", "fixed", "fixing"), ("wash", "washes", "washed", "washing"),
             ("lose", "loses", "lost", "losing"), ("bring", "brings", "brought", "bringing"),
             ("give", "gives", "gave", "giving"), ("see", "sees", "saw", "seeing"),
             ("take", "takes", "took", "taking"), ("make", "makes", "made", "making"),
             ("want", "wants", "wanted", "wanting"), ("keep", "keeps", "kept", "keeping")]
# Intransitive actions.
ACTS = [("walk", "walks", "walked", "walking"), ("run", "runs", "ran", "running"), ("sing", "sings", "sang", "singing"),
        ("dance", "dances", "danced", "dancing"), ("play", "plays", "played", "playing"),
        ("sleep", "sleeps", "slept", "sleeping"), ("swim", "swims", "swam", "swimming"),
        ("read", "reads", "read", "reading"), ("laugh", "laughs", "laughed", "laughing"),
        ("jump", "jumps", "jumped", "jumping"), ("wait", "waits", "waited", "waiting"),
        ("rest", "rests", "rested", "resting"), ("work", "works", "worked", "working"),
        ("cook", "cooks", "cooked", "cooking"), ("draw", "draws", "drew", "drawing"),
        ("climb", "climbs", "climbed", "climbing"), ("smile", "smiles", "smiled", "smiling"),
        ("listen", "listens", "listened", "listening"), ("write", "writes", "wrote", "writing"),
        ("shout", "shouts", "shouted", "shouting")]
ANIMAL_ACTS = ["ran across the road", "slept in the sun", "jumped over the fence", "ate some grass",
               "looked at the sky", "hid behind a tree", "drank from the river", "sat on the wall",
               "played in the mud", "followed the children", "made a loud noise", "climbed the hill"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]

# Fixed world facts (question, answer): the same answer every time, so a small model can learn them.
FACTS = [
    ("What color is the sky?", "blue"), ("What color is grass?", "green"), ("What color is snow?", "white"),
    ("What color is a banana?", "yellow"), ("What color is coal?", "black"), ("What color is a tomato?", "red"),
    ("How many legs does a dog have?", "4"), ("How many legs does a bird have?", "2"),
    ("How many legs does a spider have?", "8"), ("How many legs does an insect have?", "6"),
    ("How many days are in a week?", "7"), ("How many months are in a year?", "12"),
    ("How many hours are in a day?", "24"), ("How many minutes are in an hour?", "60"),
    ("How many seconds are in a minute?", "60"), ("How many days are in a year?", "365"),
    ("How many sides does a triangle have?", "3"), ("How many sides does a square have?", "4"),
    ("How many wheels does a bicycle have?", "2"), ("How many wheels does a car have?", "4"),
    ("How many fingers are on one hand?", "5"), ("How many eyes does a person have?", "2"),
    ("What is the capital of France?", "Paris"), ("What is the capital of England?", "London"),
    ("What is the capital of Japan?", "Tokyo"), ("What is the capital of China?", "Beijing"),
    ("What is the capital of Italy?", "Rome"), ("What is the capital of Egypt?", "Cairo"),
    ("What is the capital of Spain?", "Madrid"), ("What is the capital of Germany?", "Berlin"),
    ("What is the capital of Norway?", "Oslo"), ("What is the capital of Korea?", "Seoul"),
    ("What is the capital of Kenya?", "Nairobi"), ("What is the capital of Austria?", "Vienna"),
    ("What is the capital of Ireland?", "Dublin"), ("What is the capital of Portugal?", "Lisbon"),
    ("What is the capital of Peru?", "Lima"), ("What is the capital of Russia?", "Moscow"),
    ("What do bees make?", "honey"), ("What do cows give?", "milk"), ("What do hens lay?", "eggs"),
    ("Where do fish live?", "in water"), ("What falls from clouds?", "rain"), ("What is frozen water?", "ice"),
    ("What do we use to write?", "a pen"), ("What do we use to cut paper?", "scissors"),
    ("What do we sleep on?", "a bed"), ("What shines at night?", "the moon"), ("What shines in the day?", "the sun"),
    ("What is the first day of the week?", "Monday"), ("What is the last month of the year?", "December"),
    ("What is the first month of the year?", "January"), ("Which animal says moo?", "a cow"),
    ("Which animal says woof?", "a dog"), ("Which animal says meow?", "a cat"), ("Which animal can fly?", "a bird"),
    ("What do plants need to grow?", "water and light"), ("What season comes after winter?", "spring"),
    ("What season comes after summer?", "autumn"), ("What is the opposite of hot?", "cold"),
    ("What is the opposite of big?", "small"), ("What is the opposite of up?", "down"),
    ("What is the opposite of day?", "night"), ("What is the opposite of happy?", "sad"),
    ("What is the opposite of fast?", "slow"), ("What is the opposite of open?", "closed"),
]
OPPOSITES = [("hot", "cold"), ("big", "small"), ("up", "down"), ("day", "night"), ("happy", "sad"),
             ("fast", "slow"), ("open", "closed"), ("old", "new"), ("light", "dark"), ("wet", "dry"),
             ("full", "empty"), ("tall", "short"), ("soft", "hard"), ("early", "late"), ("near", "far"),
             ("clean", "dirty"), ("heavy", "light"), ("loud", "quiet"), ("left", "right"), ("in", "out")]

# Chinese word lists (common characters).
ZH_NAMES = ["小明", "小红", "小华", "小刚", "小丽", "李华", "王芳", "张伟", "刘洋", "陈静", "赵磊", "周婷", "老师",
            "妈妈", "爸爸", "奶奶", "爷爷", "哥哥", "姐姐", "弟弟", "妹妹"]
ZH_PLACES = ["学校", "公园", "商店", "图书馆", "医院", "超市", "河边", "山上", "家里", "教室", "饭店", "花园",
             "动物园", "火车站", "海边", "操场", "书店", "村子里"]
ZH_CITIES = ["北京", "上海", "广州", "深圳", "杭州", "南京", "成都", "西安", "武汉", "天津", "重庆", "长沙"]
# (noun, measure word)
ZH_OBJECTS = [("苹果", "个"), ("书", "本"), ("笔", "支"), ("杯子", "个"), ("花", "朵"), ("猫", "只"), ("狗", "只"),
              ("鸟", "只"), ("鱼", "条"), ("椅子", "把"), ("桌子", "张"), ("纸", "张"), ("球", "个"), ("鸡蛋", "个"),
              ("橘子", "个"), ("本子", "本"), ("衣服", "件"), ("帽子", "顶"), ("鞋", "双"), ("车", "辆"), ("树", "棵"),
              ("糖", "块"), ("面包", "个"), ("铅笔", "支"), ("气球", "个")]
ZH_FOODS = ["米饭", "面条", "包子", "饺子", "苹果", "西瓜", "鸡蛋", "牛奶", "面包", "蛋糕", "鱼", "青菜", "豆腐",
            "水果", "茶"]
ZH_TIMES = ["今天", "明天", "昨天", "早上", "中午", "晚上", "下午", "周末", "星期一", "星期三", "星期五", "春天",
            "夏天", "秋天", "冬天", "每天"]
ZH_ACTIVITIES = ["看书", "踢球", "买东西", "散步", "画画", "唱歌", "跑步", "上课", "写作业", "吃饭", "玩游戏",
                 "看电影", "学习", "打扫房间", "做饭", "跳舞", "游泳", "买菜", "看花", "钓鱼"]
ZH_WEATHER = ["很好", "很热", "很冷", "不错", "下雨了", "下雪了", "有风", "晴朗", "阴天"]
ZH_FEELINGS = ["很高兴", "很开心", "有点累", "很饿", "很忙", "很满意", "有点难过", "很兴奋"]
ZH_COLORS = ["红色", "蓝色", "绿色", "黄色", "白色", "黑色", "紫色"]
ZH_ADJ = ["很大", "很小", "很漂亮", "很干净", "很安静", "很热闹", "很好看", "很新", "很旧"]
ZH_FACTS = [("一个星期有几天？", "一个星期有七天。"), ("一年有几个月？", "一年有十二个月。"),
            ("天空是什么颜色的？", "天空是蓝色的。"), ("草是什么颜色的？", "草是绿色的。"),
            ("中国的首都是哪里？", "中国的首都是北京。"), ("一天有多少个小时？", "一天有二十四个小时。"),
            ("蜜蜂会做什么？", "蜜蜂会做蜂蜜。"), ("鱼住在哪里？", "鱼住在水里。"), ("冬天冷还是热？", "冬天很冷。"),
            ("夏天冷还是热？", "夏天很热。"), ("猫怎么叫？", "猫喵喵叫。"), ("狗怎么叫？", "狗汪汪叫。"),
            ("春天后面是什么季节？", "春天后面是夏天。"), ("太阳从哪边升起？", "太阳从东边升起。")]


def a_or_an(word):
    return ("an " if word[0] in "aeiou" else "a ") + word


def plural(word):
    if word in PLURALS:
        return PLURALS[word]
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def count_noun(n, word):
    return f"{n} {word if n == 1 else plural(word)}"


class Person:
    def __init__(self, rng, exclude=()):
        while True:
            girl = rng.random() < 0.5
            self.name = rng.choice(GIRLS if girl else BOYS)
            if self.name not in exclude:
                break
        self.he, self.him, self.his = ("she", "her", "her") if girl else ("he", "him", "his")
        self.He, self.His = self.he.capitalize(), self.his.capitalize()


# ----------------------------------------------------------------------------------------------------------------
# math: equations, the same facts in words, Q/A, counting, comparisons
# ----------------------------------------------------------------------------------------------------------------
def operand(rng):
    r = rng.random()
    if r < 0.25:
        return rng.randint(0, 9)
    if r < 0.9:
        return rng.randint(10, 99)
    return rng.randint(100, 999)


def add_pair(rng):
    return operand(rng), operand(rng)


def mul_pair(rng):
    r = rng.random()
    if r < 0.75:
        return rng.randint(0, 12), rng.randint(0, 12)
    return rng.randint(10, 99), rng.randint(2, 9)


def math_item(rng):
    r = rng.random()
    sp = rng.random() < 0.25
    def eq(expr_parts, result):
        return (" " if sp else "").join(expr_parts + ["=", str(result)])
    if r < 0.22:
        a, b = add_pair(rng)
        return eq([str(a), "+", str(b)], a + b)
    if r < 0.36:
        a, b = add_pair(rng)
        a, b = max(a, b), min(a, b)
        return eq([str(a), "-", str(b)], a - b)
    if r < 0.50:
        a, b = mul_pair(rng)
        return eq([str(a), "*", str(b)], a * b)
    if r < 0.55:
        b, c = rng.randint(1, 12), rng.randint(0, 12)
        return eq([str(b * c), "/", str(b)], c)
    if r < 0.61:
        a, b, c = rng.randint(1, 60), rng.randint(1, 40), rng.randint(1, 30)
        if rng.random() < 0.5:
            return eq([str(a), "+", str(b), "+", str(c)], a + b + c)
        c = rng.randint(0, a + b)
        return eq([str(a), "+", str(b), "-", str(c)], a + b - c)
    if r < 0.64:
        a, b, c = rng.randint(1, 12), rng.randint(1, 12), rng.randint(1, 20)
        return eq([str(a), "*", str(b), "+", str(c)], a * b + c)
    if r < 0.80:
        return math_words(rng)
    if r < 0.92:
        return math_qa(rng)
    if r < 0.96:
        start, step = rng.randint(0, 90), rng.choice([1, 1, 1, 2, 5, 10])
        seq = ", ".join(str(start + step * i) for i in range(rng.randint(4, 8)))
        return rng.choice([f"Count on: {seq}.", f"{seq}", f"Counting by {step}: {seq}."])
    a, b = rng.sample(range(0, 100), 2)
    big, small = max(a, b), min(a, b)
    return rng.choice([f"{big} is more than {small}.", f"{small} is less than {big}.",
                       f"The larger of {a} and {b} is {big}.", f"The smaller of {a} and {b} is {small}.",
                       f"{big}>{small}", f"{small}<{big}"])


def math_words(rng):
    kind = rng.randrange(4)
    if kind == 0:
        a, b = add_pair(rng)
        return rng.choice([f"{a} plus {b} is {a + b}.", f"{a} plus {b} equals {a + b}.",
                           f"The sum of {a} and {b} is {a + b}.", f"Adding {a} and {b} gives {a + b}.",
                           f"If you add {b} to {a}, you get {a + b}."])
    if kind == 1:
        a, b = add_pair(rng)
        a, b = max(a, b), min(a, b)
        return rng.choice([f"{a} minus {b} is {a - b}.", f"{a} minus {b} equals {a - b}.",
                           f"The difference between {a} and {b} is {a - b}.",
                           f"If you take {b} from {a}, you get {a - b}.", f"Subtracting {b} from {a} gives {a - b}."])
    if kind == 2:
        a, b = mul_pair(rng)
        return rng.choice([f"{a} times {b} is {a * b}.", f"{a} times {b} equals {a * b}.",
                           f"The product of {a} and {b} is {a * b}.", f"{a} multiplied by {b} is {a * b}."])
    b, c = rng.randint(1, 12), rng.randint(0, 12)
    return rng.choice([f"{b * c} divided by {b} is {c}.", f"{b * c} divided by {b} equals {c}."])


def math_qa(rng):
    q, a = math_question(rng)
    style = rng.randrange(3)
    if style == 0:
        return f"Q: {q}\nA: {a}"
    if style == 1:
        return f"Question: {q}\nAnswer: {a}"
    return f"{q} {a}."


def math_question(rng):
    """An arithmetic question in words and its answer (as text)."""
    kind = rng.randrange(4)
    if kind == 0:
        a, b = add_pair(rng)
        q = rng.choice([f"What is {a} plus {b}?", f"What is the sum of {a} and {b}?", f"How much is {a} plus {b}?",
                        f"What is {a}+{b}?"])
        return q, str(a + b)
    if kind == 1:
        a, b = add_pair(rng)
        a, b = max(a, b), min(a, b)
        q = rng.choice([f"What is {a} minus {b}?", f"What is {a} take away {b}?",
                        f"What is the difference between {a} and {b}?", f"What is {a}-{b}?"])
        return q, str(a - b)
    if kind == 2:
        a, b = mul_pair(rng)
        q = rng.choice([f"What is {a} times {b}?", f"What is the product of {a} and {b}?", f"What is {a}*{b}?"])
        return q, str(a * b)
    b, c = rng.randint(1, 12), rng.randint(0, 12)
    q = rng.choice([f"What is {b * c} divided by {b}?", f"What is {b * c}/{b}?"])
    return q, str(c)


def math_doc(rng):
    items = [math_item(rng) for _ in range(rng.randint(8, 20))]
    return "\n".join(items)


# ----------------------------------------------------------------------------------------------------------------
# word: small word problems with the working and the answer
# ----------------------------------------------------------------------------------------------------------------
WORD_OBJECTS = ["apple", "book", "ball", "coin", "pen", "cookie", "egg", "flower", "pencil", "shell", "stone", "toy",
                "card", "sticker", "marble", "orange", "pear", "candle", "cup", "kite", "ticket", "stamp", "button"]


def word_problem(rng):
    p = Person(rng)
    q = Person(rng, exclude=(p.name,))
    obj = rng.choice(WORD_OBJECTS)
    kind = rng.randrange(8)
    if kind == 0:
        a, b = rng.randint(1, 60), rng.randint(1, 40)
        text = (f"{p.name} has {count_noun(a, obj)}. {p.He} {rng.choice(['buys', 'finds', 'gets'])} {b} more. "
                f"How many {plural(obj)} does {p.he} have now?")
        work, ans = [f"{a}+{b}={a + b}"], a + b
    elif kind == 1:
        a = rng.randint(5, 80)
        b = rng.randint(1, a)
        text = (f"{p.name} had {count_noun(a, obj)}. {p.He} gave {b} to {q.name}. "
                f"How many {plural(obj)} does {p.name} have left?")
        work, ans = [f"{a}-{b}={a - b}"], a - b
    elif kind == 2:
        n, k = rng.randint(2, 12), rng.randint(2, 12)
        box = rng.choice(["box", "bag", "basket", "jar", "row", "shelf"])
        text = (f"There are {count_noun(n, box)} with {count_noun(k, obj)} in each {box}. "
                f"How many {plural(obj)} are there in all?")
        work, ans = [f"{n}*{k}={n * k}"], n * k
    elif kind == 3:
        price, n = rng.randint(2, 12), rng.randint(2, 9)
        text = (f"A shop sells {plural(obj)} for {price} coins each. {p.name} buys {n} {plural(obj)}. "
                f"How many coins does {p.he} pay?")
        work, ans = [f"{n}*{price}={n * price}"], n * price
    elif kind == 4:
        a = rng.randint(10, 70)
        b = rng.randint(1, a)
        c = rng.randint(1, 30)
        text = (f"{p.name} had {count_noun(a, obj)}. {p.He} lost {b} and then found {c}. "
                f"How many {plural(obj)} does {p.he} have now?")
        work, ans = [f"{a}-{b}={a - b}", f"{a - b}+{c}={a - b + c}"], a - b + c
    elif kind == 5:
        a, b = rng.randint(1, 50), rng.randint(1, 50)
        text = (f"{p.name} has {count_noun(a, obj)} and {q.name} has {count_noun(b, obj)}. "
                f"How many {plural(obj)} do they have together?")
        work, ans = [f"{a}+{b}={a + b}"], a + b
    elif kind == 6:
        k, n = rng.randint(2, 9), rng.randint(1, 9)
        total = k * n
        text = (f"{p.name} shares {count_noun(total, obj)} equally among {k} friends. "
                f"How many {plural(obj)} does each friend get?")
        work, ans = [f"{total}/{k}={n}"], n
    else:
        n, k = rng.randint(2, 6), rng.randint(2, 9)
        extra = rng.randint(1, 15)
        text = (f"{p.name} buys {n} packs of {plural(obj)}. Each pack has {k} {plural(obj)}. "
                f"{q.name} gives {p.him} {extra} more. How many {plural(obj)} does {p.name} have?")
        work, ans = [f"{n}*{k}={n * k}", f"{n * k}+{extra}={n * k + extra}"], n * k + extra
    style = rng.randrange(3)
    if style == 0:
        return f"{text}\n{' '.join(w + '.' for w in work)} The answer is {ans}."
    if style == 1:
        return f"Problem: {text}\nSolution: {' '.join(w + '.' for w in work)}\nAnswer: {ans}"
    return f"{text} {' '.join(w + '.' for w in work)} So the answer is {ans}."


def word_doc(rng):
    return "\n\n".join(word_problem(rng) for _ in range(rng.randint(3, 7)))


# ----------------------------------------------------------------------------------------------------------------
# story: short English stories and scenes
# ----------------------------------------------------------------------------------------------------------------
def noun_phrase(rng, obj=None):
    obj = obj or rng.choice(OBJECTS)
    r = rng.random()
    if r < 0.3:
        return a_or_an(f"{rng.choice(COLORS)} {obj}")
    if r < 0.5:
        return a_or_an(f"{rng.choice(SIZES)} {obj}")
    if r < 0.7:
        return a_or_an(f"{rng.choice(QUALITIES)} {obj}")
    if r < 0.8:
        return a_or_an(f"{rng.choice(SIZES)} {rng.choice(COLORS)} {obj}")
    return a_or_an(obj)


def story(rng):
    p = Person(rng)
    f = Person(rng, exclude=(p.name,))
    place, place2 = rng.sample(PLACES, 2)
    obj, obj2 = rng.sample(OBJECTS, 2)
    animal = rng.choice(ANIMALS)
    rel = rng.choice(RELATIVES)
    v = rng.choice(OBJ_VERBS)
    act = rng.choice(ACTS)
    city = rng.choice(CITIES)
    color = rng.choice(COLORS)
    opening = rng.choice([
        f"Once upon a time, there was a {rng.choice(['girl' if p.he == 'she' else 'boy', 'child'])} named {p.name}.",
        f"{p.name} lived in a {rng.choice(SIZES)} house near the {place}.",
        f"{p.name} was a {rng.choice(JOBS)} in {city}.",
        f"There was once {a_or_an(rng.choice(QUALITIES) + ' ' + animal)} that lived by the {place}.",
        f"{rng.choice(TIMES)}, {p.name} went to the {place}.",
        f"{p.name} and {f.name} were good friends.",
        f"Every day, {p.name} {act[2]} to the {place} with {p.his} {rel}.",
    ])
    middle = [
        f"{rng.choice(WEATHER)}",
        f"{p.He} {v[2]} {noun_phrase(rng, obj)} near the {place2}.",
        f"{rng.choice(TIMES)}, {p.name} saw {a_or_an(rng.choice(COLORS) + ' ' + animal)}.",
        f"The {animal} {rng.choice(ANIMAL_ACTS)}.",
        f"{p.name} felt {rng.choice(FEELINGS)}.",
        f"{f.name} asked, \"Can I {v[0]} your {obj}?\"",
        f"\"Yes, you can,\" said {p.name}.",
        f"\"Look at the {animal}!\" said {f.name}.",
        f"\"Where is my {obj}?\" asked {p.name}.",
        f"\"It is in the {rng.choice(['box', 'bag', 'basket', 'kitchen', 'garden'])},\" said {p.his} {rel}.",
        f"{p.name} and {f.name} {act[2]} together.",
        f"{p.His} {rel} liked to {act[0]} in the {place}.",
        f"They stayed at the {place} until it was dark.",
        f"{p.He} put the {obj} on the {rng.choice(['table', 'shelf', 'floor', 'bed', 'chair'])}.",
        f"{f.name} gave {p.name} {noun_phrase(rng, obj2)}.",
        f"The {obj2} was {rng.choice(QUALITIES)}.",
        f"{p.He} wanted to buy {noun_phrase(rng, obj2)}, but {p.he} had no money.",
        f"{p.name} thought about the {obj} all day.",
        f"At the {place2}, they met {f.name}'s {rng.choice(RELATIVES)}.",
        f"{p.name} counted {rng.randint(2, 20)} {plural(rng.choice(ANIMALS))} in the {rng.choice(PLACES)}.",
        f"It's {a_or_an(color)} {obj}, and it isn't {rng.choice(QUALITIES)}.",
        f"{p.name} didn't want to go home.",
        f"They walked along the {rng.choice(['river', 'street', 'road', 'beach', 'path'])} for {rng.randint(2, 9)} hours.",
        f"{p.name} was {act[3]} when {f.name} came in.",
        f"\"I'm {rng.choice(FEELINGS)},\" said {f.name}. \"Let's {act[0]}.\"",
    ]
    body = rng.sample(middle, rng.randint(3, 7))
    ending = rng.choice([
        f"In the end, {p.name} went home {rng.choice(FEELINGS)}.",
        f"That night, {p.name} slept well.",
        f"From that day on, {p.name} and {f.name} always {act[2]} together.",
        f"{p.name} never forgot the {obj}.",
        f"The next day, {p.he} told {p.his} {rel} the whole story.",
        f"It was a good day for {p.name}.",
    ])
    return " ".join([opening] + body + [ending])


def scene(rng):
    """Loose descriptive sentences (less story, more vocabulary)."""
    out = []
    for _ in range(rng.randint(4, 9)):
        p = Person(rng)
        k = rng.randrange(10)
        if k == 0:
            out.append(f"The {rng.choice(COLORS)} {rng.choice(ANIMALS)} {rng.choice(ANIMAL_ACTS)}.")
        elif k == 1:
            v = rng.choice(OBJ_VERBS)
            out.append(f"{p.name} {v[1]} {noun_phrase(rng)} every {rng.choice(DAYS)}.")
        elif k == 2:
            out.append(f"{p.name} is a {rng.choice(JOBS)} and lives in {rng.choice(CITIES)}.")
        elif k == 3:
            out.append(f"{rng.choice(TIMES)}, the {rng.choice(PLACES)} was {rng.choice(['busy', 'quiet', 'empty', 'full of people', 'cold', 'warm'])}.")
        elif k == 4:
            out.append(f"{p.name} likes {rng.choice(FOODS)}, but {p.he} does not like {rng.choice(FOODS)}.")
        elif k == 5:
            a, b = rng.sample(OPPOSITES, 1)[0]
            out.append(rng.choice([f"The opposite of {a} is {b}.", f"{a.capitalize()} is the opposite of {b}."]))
        elif k == 6:
            i = rng.randrange(7)
            out.append(f"The day after {DAYS[i]} is {DAYS[(i + 1) % 7]}.")
        elif k == 7:
            i = rng.randrange(12)
            out.append(f"The month after {MONTHS[i]} is {MONTHS[(i + 1) % 12]}.")
        elif k == 8:
            act = rng.choice(ACTS)
            out.append(f"{p.name} is {act[3]} in the {rng.choice(PLACES)} with {p.his} {rng.choice(RELATIVES)}.")
        else:
            obj = rng.choice(OBJECTS)
            n = rng.randint(2, 12)
            out.append(f"There are {n} {plural(obj)} on the {rng.choice(['table', 'shelf', 'floor', 'desk'])}.")
    return " ".join(out)


def story_doc(rng):
    return story(rng) if rng.random() < 0.7 else scene(rng)


# ----------------------------------------------------------------------------------------------------------------
# zh: Chinese sentences, dialogues and word problems
# ----------------------------------------------------------------------------------------------------------------
def zh_sentence(rng):
    n, n2 = rng.sample(ZH_NAMES, 2)
    k = rng.randrange(14)
    if k == 0:
        return f"{rng.choice(ZH_TIMES)}，{n}和{n2}去{rng.choice(ZH_PLACES)}{rng.choice(ZH_ACTIVITIES)}。"
    if k == 1:
        f1, f2 = rng.sample(ZH_FOODS, 2)
        return f"{n}喜欢吃{f1}，不喜欢吃{f2}。"
    if k == 2:
        return f"{rng.choice(ZH_TIMES)}天气{rng.choice(ZH_WEATHER)}，{n}在{rng.choice(ZH_PLACES)}{rng.choice(ZH_ACTIVITIES)}。"
    if k == 3:
        obj, m = rng.choice(ZH_OBJECTS)
        a, b = rng.randint(1, 20), rng.randint(1, 20)
        return f"{n}有{a}{m}{obj}，{n2}又给了{n}{b}{m}，现在{n}一共有{a + b}{m}{obj}。"
    if k == 4:
        obj, m = rng.choice(ZH_OBJECTS)
        a = rng.randint(2, 30)
        b = rng.randint(1, a)
        return f"{n}有{a}{m}{obj}，用掉了{b}{m}，还剩{a - b}{m}。"
    if k == 5:
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        op = rng.randrange(3)
        if op == 0:
            return f"{a}加{b}等于{a + b}。"
        if op == 1:
            a, b = max(a, b), min(a, b)
            return f"{a}减{b}等于{a - b}。"
        a, b = rng.randint(1, 12), rng.randint(1, 12)
        return f"{a}乘{b}等于{a * b}。"
    if k == 6:
        return f"{n}住在{rng.choice(ZH_CITIES)}，每天{rng.choice(ZH_ACTIVITIES)}。"
    if k == 7:
        return f"{rng.choice(ZH_PLACES)}{rng.choice(ZH_ADJ)}。"
    if k == 8:
        return f"{n}今天{rng.choice(ZH_FEELINGS)}，因为{n2}{rng.choice(['来看他了', '给了他一本书', '请他吃饭', '帮他写作业', '送了他一朵花'])}。"
    if k == 9:
        obj, m = rng.choice(ZH_OBJECTS)
        return f"{n}买了一{m}{rng.choice(ZH_COLORS)}的{obj}。"
    if k == 10:
        return f"“你去哪里？”{n}问。“我去{rng.choice(ZH_PLACES)}{rng.choice(ZH_ACTIVITIES)}。”{n2}说。"
    if k == 11:
        q, a = rng.choice(ZH_FACTS)
        return f"问：{q}\n答：{a}"
    if k == 12:
        city = rng.choice(ZH_CITIES)
        return f"问：{n}住在哪里？\n答：{n}住在{city}。" if rng.random() < 0.5 else f"{n}住在{city}。"
    a, b = rng.randint(1, 50), rng.randint(1, 50)
    return f"问：{a}加{b}等于多少？\n答：{a}加{b}等于{a + b}。"


def zh_doc(rng):
    parts = []
    for _ in range(rng.randint(5, 12)):
        parts.append(zh_sentence(rng))
        parts.append("\n" if rng.random() < 0.3 else "")
    return "".join(parts).strip()


# ----------------------------------------------------------------------------------------------------------------
# kv: key: value records with questions, fixed facts, inventories
# ----------------------------------------------------------------------------------------------------------------
def kv_doc(rng):
    k = rng.randrange(6)
    if k == 0:   # records and questions about them (in-context lookup)
        people = []
        for _ in range(rng.randint(2, 4)):
            p = Person(rng, exclude=[q["name"] for q in people])
            people.append({"name": p.name, "age": rng.randint(6, 70), "city": rng.choice(CITIES),
                           "pet": rng.choice(ANIMALS), "color": rng.choice(COLORS), "job": rng.choice(JOBS)})
        lines = []
        for r in people:
            lines.append(f"name: {r['name']}\nage: {r['age']}\ncity: {r['city']}\npet: {r['pet']}\n"
                         f"favorite color: {r['color']}\njob: {r['job']}")
        qa = []
        for _ in range(rng.randint(2, 5)):
            r = rng.choice(people)
            field = rng.randrange(5)
            if field == 0:
                qa.append(f"Q: How old is {r['name']}?\nA: {r['age']}")
            elif field == 1:
                qa.append(f"Q: Where does {r['name']} live?\nA: {r['city']}")
            elif field == 2:
                qa.append(f"Q: What pet does {r['name']} have?\nA: {a_or_an(r['pet'])}")
            elif field == 3:
                qa.append(f"Q: What is {r['name']}'s favorite color?\nA: {r['color']}")
            else:
                qa.append(f"Q: What is {r['name']}'s job?\nA: {r['job']}")
        return "\n\n".join(lines) + "\n\n" + "\n".join(qa)
    if k == 1:   # fixed facts
        return "\n".join(f"Q: {q}\nA: {a}" for q, a in rng.sample(FACTS, rng.randint(4, 10)))
    if k == 2:   # inventory with a total
        items = rng.sample(OBJECTS, rng.randint(2, 5))
        counts = [rng.randint(0, 40) for _ in items]
        lines = [f"{plural(o)}: {c}" for o, c in zip(items, counts)]
        return "inventory\n" + "\n".join(lines) + f"\ntotal: {sum(counts)}"
    if k == 3:   # price list and a bill
        items = rng.sample(OBJECTS, rng.randint(2, 4))
        prices = [rng.randint(1, 20) for _ in items]
        qty = [rng.randint(1, 5) for _ in items]
        lines = [f"item: {o}; price: {p}; quantity: {q}; cost: {p * q}" for o, p, q in zip(items, prices, qty)]
        return "\n".join(lines) + f"\ntotal cost: {sum(p * q for p, q in zip(prices, qty))}"
    if k == 4:   # small context + question
        p = Person(rng)
        obj = rng.choice(OBJECTS)
        place = rng.choice(PLACES)
        color = rng.choice(COLORS)
        ctx = f"{p.name} left {p.his} {color} {obj} at the {place}."
        q = rng.choice([(f"Where is {p.name}'s {obj}?", f"at the {place}"), (f"What color is the {obj}?", color),
                        (f"Who left the {obj}?", p.name), (f"What did {p.name} leave at the {place}?", f"a {obj}")])
        return f"{ctx}\nQ: {q[0]}\nA: {q[1]}"
    # JSON-like records
    p = Person(rng)
    rec = {"name": p.name, "age": rng.randint(6, 70), "city": rng.choice(CITIES), "likes": rng.choice(FOODS)}
    return json.dumps(rec) + f"\nThe name is {p.name} and the age is {rec['age']}."


# ----------------------------------------------------------------------------------------------------------------
KINDS = [("math", math_doc, 0.16), ("word", word_doc, 0.09), ("story", story_doc, 0.42), ("zh", zh_doc, 0.19),
         ("kv", kv_doc, 0.14)]
FORBIDDEN = ["<|", "|>", "[gMASK]", "[MASK]", "[sMASK]", "<sop>", "<eop>"]


def generate(rng, n):
    weights = [w for _, _, w in KINDS]
    docs = []
    for _ in range(n):
        _, fn, _ = rng.choices(KINDS, weights=weights)[0]
        text = fn(rng)
        assert not any(s in text for s in FORBIDDEN), text
        docs.append(text)
    return docs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-docs", type=int, default=19000)
    ap.add_argument("--eval-docs", type=int, default=600)
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    for name, seed, n in [("train", args.seed, args.train_docs), ("eval", args.seed + 1_000_003, args.eval_docs)]:
        docs = generate(random.Random(seed), n)
        path = os.path.join(OUT, f"{name}.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for d in docs:
                f.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")
        print(f"wrote {path}: {n} documents, {os.path.getsize(path):,} bytes")


if __name__ == "__main__":
    main()
