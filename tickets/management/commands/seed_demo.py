"""``manage.py seed_demo``: a believable demo desk, for trying the product and for screenshots.

It creates three service centers, a device catalogue, fault categories, one
demo user per role (plus an administrator and a few customers, all with the
password ``DEMO_PASSWORD``) and about forty tickets spread over every stage,
with histories over the last weeks.

Tickets are created and moved only through the one door —
``Ticket.open_ticket(by=…)`` and ``ticket.perform(action, by=…)`` — each step
by a person whose role may take it (or the system, for auto-cancellations).
So the demo data is exactly what real use would have produced: the same
StageEvents, the same timestamps on the ticket, the same queued
notifications (delivered by the ``qcluster`` worker once it runs).

Past timestamps: the models read the clock through ``timezone.now()`` (and
fields default to ``timezone.now``). ``_clock_at(when)`` patches both for the
duration of one step, so each step happens "at" its moment in the story.
Nothing is written to the database afterwards to fake a date, with two
exceptions that have no lifecycle rule behind them: a contact request's
answer time, and the day a cancelled ticket's device went back (both set on
rows this command has just created).

Idempotent: catalogue rows are keyed on their codes or names, users on their
email addresses (an existing user is left untouched), and the ticket set is
skipped when the demo customers already have tickets. Demo data with a known
password has no place on a production site, so the command refuses to run
with DEBUG off unless ``--force`` is given.
"""

import logging
import random
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import time, timedelta
from unittest import mock

from django.apps import apps
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import COUNTER_CLERK, PHONE_AGENT, ROLES, SUPERVISOR, TECHNICIAN, User
from tickets import imei
from tickets.models import (
    ActorKind,
    ArrivalMethod,
    ContactRequest,
    ContactRequestKind,
    DeviceCategory,
    DeviceModel,
    FaultCategory,
    FaultFrequency,
    HandoverCheck,
    Rating,
    ReturnMethod,
    ServiceCenter,
    Ticket,
    WarrantyStatus,
)

DEMO_PASSWORD = "servicedesk-demo"

# The clock the models read; captured at import, before any patching.
_REAL_NOW = timezone.now


# --- Catalogues -------------------------------------------------------------------------

CENTERS = [
    {
        "code": "sh-xuhui",
        "name": "Shanghai Xuhui Service Center",
        "address": "上海市徐汇区漕溪北路88号1楼\n1F, 88 North Caoxi Road, Xuhui District, Shanghai 200030",
        "phone": "+862164281234",
        "email": "xuhui@service.example.com",
        "opening_hours": "Mon–Sun 09:00–21:00",
    },
    {
        "code": "bj-chaoyang",
        "name": "Beijing Chaoyang Service Center",
        "address": "北京市朝阳区建国路93号万达广场B座2层\n2F Tower B, Wanda Plaza, 93 Jianguo Road, Chaoyang District, Beijing 100022",
        "phone": "+861058201234",
        "email": "chaoyang@service.example.com",
        "opening_hours": "Mon–Sun 10:00–22:00",
    },
    {
        "code": "sz-futian",
        "name": "Shenzhen Futian Service Center",
        "address": "深圳市福田区深南大道6008号特区报业大厦1楼\n1F, 6008 Shennan Avenue, Futian District, Shenzhen 518034",
        "phone": "+8675583451234",
        "email": "futian@service.example.com",
        "opening_hours": "Mon–Sat 09:30–20:30, Sun 10:00–18:00",
    },
]

PHONE, TABLET, LAPTOP, WEARABLE = (
    DeviceCategory.PHONE,
    DeviceCategory.TABLET,
    DeviceCategory.LAPTOP,
    DeviceCategory.WEARABLE,
)

# (brand, model, category, warranty months, OS shown on tickets)
DEVICES = [
    ("Huawei", "Mate 60 Pro", PHONE, 12, "HarmonyOS 4.0"),
    ("Huawei", "P60", PHONE, 12, "HarmonyOS 4.0"),
    ("Huawei", "nova 12", PHONE, 12, "HarmonyOS 4.0"),
    ("Huawei", "MatePad 11.5", TABLET, 12, "HarmonyOS 4.0"),
    ("Huawei", "MateBook 14", LAPTOP, 24, "Windows 11 Home"),
    ("Huawei", "Watch GT 4", WEARABLE, 12, "HarmonyOS 4.0"),
    ("Xiaomi", "Xiaomi 14", PHONE, 12, "Xiaomi HyperOS 1.0"),
    ("Xiaomi", "Redmi Note 13 Pro", PHONE, 12, "MIUI 14"),
    ("Xiaomi", "Xiaomi Pad 6", TABLET, 12, "MIUI Pad 14"),
    ("Xiaomi", "RedmiBook 16", LAPTOP, 24, "Windows 11 Home"),
    ("Xiaomi", "Smart Band 8", WEARABLE, 12, "Band OS 8"),
    ("OPPO", "Find X7", PHONE, 12, "ColorOS 14"),
    ("OPPO", "Reno 11", PHONE, 12, "ColorOS 14"),
    ("OPPO", "OPPO Pad 2", TABLET, 12, "ColorOS 13.2"),
    ("OPPO", "Watch 4 Pro", WEARABLE, 12, "ColorOS Watch 4"),
    ("vivo", "X100 Pro", PHONE, 12, "OriginOS 4"),
    ("vivo", "iQOO 12", PHONE, 12, "OriginOS 4"),
    ("vivo", "vivo Pad 3", TABLET, 12, "OriginOS 4"),
    ("Honor", "Magic6 Pro", PHONE, 12, "MagicOS 8.0"),
    ("Honor", "Honor 90", PHONE, 12, "MagicOS 7.1"),
    ("Honor", "MagicBook 14", LAPTOP, 24, "Windows 11 Home"),
    ("Lenovo", "ThinkPad X1 Carbon Gen 12", LAPTOP, 24, "Windows 11 Pro"),
    ("Lenovo", "Legion Y9000P", LAPTOP, 24, "Windows 11 Home"),
    ("Lenovo", "Xiaoxin Pad Pro 12.7", TABLET, 12, "ZUI 15"),
]
# Still repaired, no longer offered on the customer's form.
RETIRED_DEVICES = [("Huawei", "Mate 40 Pro", PHONE, 12, "HarmonyOS 3.0")]

# (code, English, Simplified Chinese, description)
FAULTS = [
    ("screen", "Screen or display", "屏幕显示", "Cracked glass, dead pixels, lines, flicker, touch not responding."),
    ("battery", "Battery", "电池", "Drains fast, swollen, shuts down early, reports a wrong percentage."),
    ("charging", "Charging", "充电", "Does not charge, charges slowly, loose port, wireless charging fails."),
    ("camera", "Camera", "摄像头", "Blurry photos, black image, focus or flash not working."),
    ("audio", "Speaker or microphone", "扬声器与麦克风", "No sound, crackling, the other side cannot hear you."),
    ("water-damage", "Water damage", "进水", "The device got wet: it may work partly or not at all."),
    ("software", "Software or system", "软件与系统", "Restarts, freezes, boot loop, update failed."),
    ("buttons", "Buttons or keyboard", "按键与键盘", "Power or volume keys, keyboard keys, crown or side button."),
    ("connectivity", "Network and connectivity", "网络与连接", "No signal, SIM not detected, Wi-Fi, Bluetooth, GPS, NFC."),
    ("overheating", "Overheating", "发热", "Gets hot in normal use, fan noise, slows down when warm."),
    ("other", "Something else", "其他问题", "Anything not listed above: describe it in your own words."),
]


# --- People ---------------------------------------------------------------------------------

ADMIN = {"email": "admin@demo.test", "full_name": "Demo Administrator", "language": "en"}

# key, role, email, full name, centers (codes; empty: none)
STAFF = [
    ("supervisor", SUPERVISOR, "supervisor@demo.test", "周婷 Zhou Ting", ["sh-xuhui", "bj-chaoyang", "sz-futian"]),
    ("agent", PHONE_AGENT, "agent@demo.test", "孙丽 Sun Li", ["sh-xuhui", "bj-chaoyang", "sz-futian"]),
    ("clerk:sh-xuhui", COUNTER_CLERK, "clerk.sh@demo.test", "黄强 Huang Qiang", ["sh-xuhui"]),
    ("clerk:bj-chaoyang", COUNTER_CLERK, "clerk.bj@demo.test", "吴芳 Wu Fang", ["bj-chaoyang"]),
    ("clerk:sz-futian", COUNTER_CLERK, "clerk.sz@demo.test", "郑浩 Zheng Hao", ["sz-futian"]),
    ("tech:sh-xuhui", TECHNICIAN, "tech.sh@demo.test", "马超 Ma Chao", ["sh-xuhui"]),
    ("tech:bj-chaoyang", TECHNICIAN, "tech.bj@demo.test", "胡军 Hu Jun", ["bj-chaoyang"]),
    ("tech:sz-futian", TECHNICIAN, "tech.sz@demo.test", "林峰 Lin Feng", ["sz-futian"]),
]

# key, email, full name, phone, language, return address
CUSTOMERS = [
    ("wang", "wang.wei@demo.test", "王伟", "+8613800138001", "zh-hans", "上海市浦东新区世纪大道100号 2802室"),
    ("li", "li.na@demo.test", "李娜", "+8613900139002", "zh-hans", "北京市海淀区中关村大街27号 1205室"),
    ("zhang", "zhang.min@demo.test", "张敏", "+8618600186003", "zh-hans", "深圳市南山区科技园南区高新南七道 3栋501"),
    ("liu", "liu.yang@demo.test", "刘洋", "+8615000150004", "zh-hans", "上海市静安区南京西路1266号 18楼"),
    ("chen", "chen.jing@demo.test", "陈静", "+8613700137005", "zh-hans", "北京市朝阳区望京街10号 B座906"),
    ("emily", "emily.carter@demo.test", "Emily Carter", "+8613500135006", "en", "Apt 1502, 18 Anfu Road, Xuhui District, Shanghai"),
    ("zhao", "zhao.lei@demo.test", "赵磊", "+8618800188007", "zh-hans", "深圳市福田区华强北路1019号 7楼"),
]
DEMO_CUSTOMER_EMAILS = [email for _key, email, *_rest in CUSTOMERS]


# --- What customers write, per fault (English, Simplified Chinese) ------------------------------

SYMPTOMS = {
    "screen": [
        ("Dropped it on the pavement; the glass is cracked from the top corner and the lower half no longer reacts to touch.",
         "手机掉在地上，屏幕右上角碎裂，下半部分触摸没有反应。"),
        ("Green vertical line in the middle of the screen since the last update, brightness flickers at night.",
         "上次更新后屏幕中间出现一条绿线，晚上亮度一直闪。"),
    ],
    "battery": [
        ("Battery drops from 40% to 0 within minutes and the phone switches off, even in warm weather.",
         "电量从40%几分钟就掉到0然后自动关机，天气不冷也这样。"),
        ("The back cover is lifting on one side — I think the battery is swelling.",
         "后盖一侧翘起来了，怀疑电池鼓包。"),
    ],
    "charging": [
        ("Only charges when the cable is held at an angle; the port feels loose.",
         "充电线要斜着才能充上电，接口感觉松了。"),
        ("Stopped charging completely overnight, neither cable nor wireless works.",
         "一夜之间完全充不进电，有线无线都不行。"),
    ],
    "camera": [
        ("Main camera photos are blurry and the lens rattles when I shake the phone.",
         "主摄拍照模糊，摇手机时能听到镜头晃动的声音。"),
        ("Camera app shows a black screen on the rear camera; front camera works.",
         "后置摄像头打开是黑屏，前置正常。"),
    ],
    "audio": [
        ("People cannot hear me during calls unless I use earphones.",
         "打电话对方听不到我说话，戴耳机就可以。"),
        ("The speaker crackles at any volume above half.",
         "音量开到一半以上扬声器就有破音。"),
    ],
    "water-damage": [
        ("Fell into the sink for a few seconds; now the screen has a shadow and it vibrates by itself.",
         "掉进水池几秒钟，现在屏幕有阴影，还会自己震动。"),
        ("Got soaked in the rain on a bike ride; it turns on but charging shows 'moisture detected'.",
         "骑车淋雨后能开机，但充电时一直提示检测到水分。"),
    ],
    "software": [
        ("Stuck in a boot loop after the system update; it shows the logo and restarts.",
         "系统更新后一直卡在开机画面，反复重启。"),
        ("Apps close by themselves and the phone freezes several times a day.",
         "应用经常自己闪退，一天会死机好几次。"),
    ],
    "buttons": [
        ("The power button is stuck and the device cannot be woken up without the charger.",
         "电源键卡住按不下去，不插充电器无法唤醒。"),
        ("Several keys on the keyboard (E, R, space) only work when pressed hard.",
         "键盘上E、R和空格键要用力按才有反应。"),
    ],
    "connectivity": [
        ("SIM card not detected since yesterday; tried two different SIMs.",
         "从昨天开始检测不到SIM卡，换了两张卡都一样。"),
        ("Wi-Fi keeps dropping every few minutes while other devices at home are fine.",
         "Wi-Fi每隔几分钟就断一次，家里其他设备都正常。"),
    ],
    "overheating": [
        ("Gets very hot near the camera when charging, too hot to hold.",
         "充电时摄像头附近非常烫，拿不住。"),
        ("The fan runs loudly all the time and the laptop throttles during video calls.",
         "风扇一直狂转，视频会议时电脑明显变卡。"),
    ],
    "other": [
        ("The vibration motor makes a grinding noise and sometimes does not stop.",
         "振动马达有摩擦声，有时停不下来。"),
    ],
}

CONDITIONS = [
    ("Light scratches on the frame; no dents.", "边框有轻微划痕，无磕碰。"),
    ("Screen protector applied, case removed and returned to the customer.", "贴有钢化膜，保护壳已退还顾客。"),
    ("Small dent on the lower left corner.", "左下角有一处小磕碰。"),
    ("Good overall condition.", "整体成色良好。"),
]


# --- The stories -----------------------------------------------------------------------------------


@dataclass
class Step:
    """One action through the one door, ``hours`` after the previous moment of the story."""

    hours: float
    who: str  # customer, clerk, tech, agent, supervisor or system
    action: str
    note: tuple = ()  # (English, Chinese): the note the customer sees
    internal: str = ""
    details: dict = field(default_factory=dict)


@dataclass
class Ask:
    """Staff ask the customer something (a ContactRequest)."""

    hours: float
    who: str
    kind: str
    message: tuple
    respond_within_hours: float = 72


@dataclass
class Answer:
    """The customer answers the last contact request."""

    hours: float
    text: tuple


@dataclass
class ConfirmWarranty:
    hours: float
    status: str


@dataclass
class Rate:
    hours: float
    stars: int
    comment: tuple


@dataclass
class DeviceReturned:
    """A cancelled ticket's device goes back to the customer over the counter."""

    hours: float


@dataclass
class Story:
    key: str
    center: str
    customer: str
    device: tuple  # (brand, model) from the catalogue, or ("other", "free text")
    fault: str
    days_ago: float
    steps: list = field(default_factory=list)
    arrival: str = ArrivalMethod.DROP_OFF
    ret: str = ReturnMethod.PICKUP
    frequency: str = FaultFrequency.ALWAYS
    opened_by: str = "customer"
    purchased_months_ago: int = 7
    resubmits: str = ""  # key of the cancelled story this one resubmits


RECEIVED = ("We have received your device and started the inspection.", "我们已收到您的设备，开始检测。")
PARTS = ("A replacement part is on order; we will let you know when it arrives (usually 3–7 days).",
         "维修所需配件已下单，到货后我们会通知您（通常3–7天）。")
REPAIR = ("The repair has started.", "维修已开始。")
TESTING = ("The repair is done; the device is in final testing.", "维修已完成，设备正在进行测试验收。")
READY = ("Your device is ready. Bring your pickup code or ID to the counter.", "您的设备已修好，请携带取件码或身份证件到柜台取件。")
SHIP = ("Your device is repaired and will be shipped back to you shortly.", "您的设备已修好，将尽快寄回。")
HANDED = ("Handed over at the counter. Thank you for your patience!", "已在柜台交付，感谢您的耐心等待！")
SHIPPED = ("Shipped back to you.", "已寄回，请注意查收。")


def _standard_repair(parts=False, fail=False, ship=False):
    steps = [
        Step(20, "clerk", "receive_device", RECEIVED, "Checked in at the counter."),
        ConfirmWarranty(3, WarrantyStatus.IN_WARRANTY),
    ]
    if parts:
        steps.append(Step(5, "tech", "order_parts", PARTS, "Part ordered from the regional warehouse."))
        steps.append(Step(90, "tech", "start_repair", REPAIR, "Part arrived."))
    else:
        steps.append(Step(6, "tech", "start_repair", REPAIR))
    steps.append(Step(8, "tech", "send_to_testing", TESTING))
    if fail:
        steps.append(Step(4, "tech", "fail_testing", (), "Intermittent fault still reproducible after 30 min stress test."))
        steps.append(Step(20, "tech", "send_to_testing", TESTING, "Reseated flex cable, retest."))
    steps.append(Step(18, "tech", "pass_testing", SHIP if ship else READY))
    return steps


STORIES = [
    # --- submitted -----------------------------------------------------------------
    Story("s1", "sh-xuhui", "wang", ("Huawei", "Mate 60 Pro"), "screen", 0.2),
    Story("s2", "bj-chaoyang", "li", ("Xiaomi", "Xiaomi 14"), "battery", 1.5,
          arrival=ArrivalMethod.MAIL_IN, ret=ReturnMethod.SHIP_BACK,
          steps=[Ask(3, "agent", ContactRequestKind.BRING_DEVICE,
                     ("Please send the device to our Beijing Chaoyang center with a note of your ticket number inside the parcel.",
                      "请将设备寄到北京朝阳服务中心，并在包裹内附上写有工单号的纸条。"), 24 * 7)]),
    Story("s3", "sz-futian", "emily", ("OPPO", "Find X7"), "camera", 0.5, frequency=FaultFrequency.SOMETIMES),
    Story("s4", "sh-xuhui", "zhang", ("Honor", "Magic6 Pro"), "software", 2, frequency=FaultFrequency.OFTEN,
          steps=[Ask(2, "agent", ContactRequestKind.MISSING_INFORMATION,
                     ("Please upload a photo of the purchase receipt so that we can confirm the warranty.",
                      "请上传购机发票的照片，以便我们确认保修状态。"), 72)]),
    Story("s5", "bj-chaoyang", "zhao", ("other", "Meizu 21"), "charging", 0.8),
    # --- inspecting --------------------------------------------------------------------
    Story("i1", "sh-xuhui", "liu", ("Huawei", "MatePad 11.5"), "screen", 3, purchased_months_ago=15,
          steps=[Step(20, "clerk", "receive_device", RECEIVED, "Crack in the upper right corner, frame bent."),
                 ConfirmWarranty(4, WarrantyStatus.OUT_OF_WARRANTY),
                 Ask(1, "agent", ContactRequestKind.QUOTE,
                     ("The tablet is out of warranty. Replacing the display costs 1,280 CNY including labour. Shall we go ahead?",
                      "设备已过保修期，更换屏幕费用为1280元（含工时费）。是否继续维修？"), 96)]),
    Story("i2", "bj-chaoyang", "chen", ("Xiaomi", "Redmi Note 13 Pro"), "charging", 1, opened_by="clerk",
          steps=[Step(0.2, "clerk", "receive_device", RECEIVED, "Walk-in, taken in at the counter.")]),
    Story("i3", "sz-futian", "wang", ("vivo", "X100 Pro"), "overheating", 4, arrival=ArrivalMethod.MAIL_IN,
          ret=ReturnMethod.SHIP_BACK, frequency=FaultFrequency.OFTEN,
          steps=[Step(60, "clerk", "receive_device", RECEIVED, "Parcel received by SF Express, packaging intact.")]),
    Story("i4", "sh-xuhui", "emily", ("Lenovo", "ThinkPad X1 Carbon Gen 12"), "buttons", 2,
          steps=[Step(3, "tech", "receive_device", RECEIVED, "Received directly at the workshop desk.")]),
    # --- awaiting_parts --------------------------------------------------------------------
    Story("p1", "sh-xuhui", "li", ("Huawei", "Mate 60 Pro"), "screen", 9,
          steps=[Step(22, "clerk", "receive_device", RECEIVED),
                 ConfirmWarranty(2, WarrantyStatus.IN_WARRANTY),
                 Step(26, "tech", "order_parts", PARTS, "Display assembly, expected in 5–7 days.")]),
    Story("p2", "bj-chaoyang", "zhang", ("Xiaomi", "Xiaomi Pad 6"), "battery", 7,
          steps=[Step(30, "clerk", "receive_device", RECEIVED), Step(20, "tech", "order_parts", PARTS)]),
    Story("p3", "sz-futian", "zhao", ("OPPO", "Reno 11"), "camera", 12,
          steps=[Step(20, "clerk", "receive_device", RECEIVED), Step(8, "tech", "start_repair", REPAIR),
                 Step(6, "tech", "order_parts",
                      ("We found that the flash module also needs replacing; the part is on order.",
                       "检测发现闪光灯模组也需要更换，配件已下单。"), "Second fault found during repair.")]),
    Story("p4", "sh-xuhui", "chen", ("Huawei", "MateBook 14"), "overheating", 10, arrival=ArrivalMethod.MAIL_IN,
          ret=ReturnMethod.SHIP_BACK,
          steps=[Step(70, "clerk", "receive_device", RECEIVED), Step(24, "tech", "order_parts", PARTS, "Fan assembly.")]),
    # --- repairing -----------------------------------------------------------------------------
    Story("r1", "bj-chaoyang", "liu", ("Honor", "Honor 90"), "charging", 6,
          steps=[Step(18, "clerk", "receive_device", RECEIVED), Step(26, "tech", "start_repair", REPAIR)]),
    Story("r2", "sz-futian", "emily", ("vivo", "iQOO 12"), "audio", 8,
          steps=[Step(20, "clerk", "receive_device", RECEIVED), Step(5, "tech", "order_parts", PARTS),
                 Step(70, "tech", "start_repair", REPAIR, "Speaker module arrived.")]),
    Story("r3", "sh-xuhui", "zhang", ("Xiaomi", "Xiaomi 14"), "software", 5,
          steps=[Step(20, "clerk", "receive_device", RECEIVED), Step(5, "tech", "start_repair", REPAIR),
                 Step(6, "tech", "send_to_testing", TESTING),
                 Step(3, "tech", "fail_testing", (), "Touch still unresponsive in the lower right corner after reflash.")]),
    Story("r4", "bj-chaoyang", "chen", ("Huawei", "Watch GT 4"), "buttons", 4,
          steps=[Step(22, "clerk", "receive_device", RECEIVED), Step(20, "tech", "start_repair", REPAIR)]),
    # --- testing ---------------------------------------------------------------------------------
    Story("t1", "sz-futian", "li", ("OPPO", "OPPO Pad 2"), "screen", 9,
          steps=[Step(20, "clerk", "receive_device", RECEIVED), Step(5, "tech", "order_parts", PARTS),
                 Step(96, "tech", "start_repair", REPAIR), Step(10, "tech", "send_to_testing", TESTING)]),
    Story("t2", "sh-xuhui", "zhao", ("Honor", "MagicBook 14"), "battery", 6,
          steps=[Step(24, "clerk", "receive_device", RECEIVED), Step(20, "tech", "start_repair", REPAIR),
                 Step(28, "tech", "send_to_testing", TESTING)]),
    Story("t3", "bj-chaoyang", "wang", ("Xiaomi", "Smart Band 8"), "charging", 5,
          steps=[Step(20, "clerk", "receive_device", RECEIVED), Step(24, "tech", "start_repair", REPAIR),
                 Step(20, "supervisor", "send_to_testing", TESTING, "Covered for the technician on leave.")]),
    # --- ready_for_pickup -------------------------------------------------------------------------
    Story("k1", "sh-xuhui", "liu", ("Huawei", "P60"), "water-damage", 11, frequency=FaultFrequency.ALWAYS,
          steps=_standard_repair()),
    Story("k2", "bj-chaoyang", "emily", ("Xiaomi", "RedmiBook 16"), "connectivity", 12, steps=_standard_repair(parts=True)),
    Story("k3", "sz-futian", "zhang", ("vivo", "vivo Pad 3"), "screen", 10, steps=_standard_repair(fail=True)),
    Story("k4", "sh-xuhui", "chen", ("Huawei", "nova 12"), "battery", 4, steps=_standard_repair()),
    # --- awaiting_return_shipment -------------------------------------------------------------------
    Story("w1", "bj-chaoyang", "zhao", ("Honor", "Magic6 Pro"), "camera", 12, arrival=ArrivalMethod.MAIL_IN,
          ret=ReturnMethod.SHIP_BACK, steps=_standard_repair(ship=True)),
    Story("w2", "sz-futian", "wang", ("OPPO", "Watch 4 Pro"), "battery", 8, arrival=ArrivalMethod.MAIL_IN,
          ret=ReturnMethod.SHIP_BACK, steps=_standard_repair(ship=True)),
    Story("w3", "sh-xuhui", "li", ("Lenovo", "Xiaoxin Pad Pro 12.7"), "charging", 6, ret=ReturnMethod.SHIP_BACK,
          steps=_standard_repair(ship=True)),
    # --- completed ------------------------------------------------------------------------------------
    Story("c1", "sh-xuhui", "wang", ("Huawei", "nova 12"), "screen", 30,
          steps=_standard_repair(parts=True)
          + [Step(26, "clerk", "hand_over", HANDED, details={"check": "pickup_code"}),
             Rate(5, 5, ("Quick and friendly, the new screen looks perfect.", "速度快，服务热情，新屏幕效果很好。"))]),
    Story("c2", "bj-chaoyang", "li", ("Xiaomi", "Xiaomi 14"), "battery", 25,
          steps=_standard_repair()
          + [Step(48, "clerk", "hand_over", HANDED, details={"check": "id_document"}),
             Rate(30, 4, ("Good repair, but I had to wait 20 minutes at the counter.", "修得不错，就是柜台排队等了20分钟。"))]),
    Story("c3", "sz-futian", "zhang", ("OPPO", "Find X7"), "charging", 35, arrival=ArrivalMethod.MAIL_IN,
          ret=ReturnMethod.SHIP_BACK,
          steps=_standard_repair(ship=True)
          + [Step(20, "clerk", "ship_back", SHIPPED, details={"carrier": "SF Express", "tracking_number": "SF1428807316542"}),
             Rate(50, 5, ("Mailed it in and got it back in a week, very convenient.", "寄修一周就收到了，非常方便。"))]),
    Story("c4", "sh-xuhui", "liu", ("Honor", "Honor 90"), "software", 20,
          steps=_standard_repair(fail=True)
          + [Step(30, "clerk", "hand_over", HANDED, details={"check": "pickup_code"}),
             Rate(4, 3, ("Fixed in the end, but it took longer than promised.", "最终修好了，但比承诺的时间长。"))]),
    Story("c5", "bj-chaoyang", "chen", ("Lenovo", "Legion Y9000P"), "overheating", 28,
          steps=_standard_repair(parts=True, fail=True)
          + [Step(24, "clerk", "hand_over", HANDED, details={"check": "id_document"}),
             Rate(10, 4, ("The fan is quiet again. Thanks!", "风扇终于安静了，谢谢！"))]),
    Story("c6", "sz-futian", "emily", ("vivo", "X100 Pro"), "audio", 18,
          steps=_standard_repair()
          + [Step(20, "supervisor", "hand_over", HANDED, details={"check": "pickup_code"}),
             Rate(2, 5, ("Clear explanation of what was wrong, and done in three days.", "讲解清楚，三天就修好了。"))]),
    Story("c7", "sh-xuhui", "zhao", ("Huawei", "Watch GT 4"), "water-damage", 40, arrival=ArrivalMethod.MAIL_IN,
          ret=ReturnMethod.SHIP_BACK, purchased_months_ago=10,
          steps=_standard_repair(parts=True, ship=True)
          + [Step(22, "clerk", "ship_back", SHIPPED, details={"carrier": "JD Logistics", "tracking_number": "JDVA20931785564"})]),
    Story("c8", "bj-chaoyang", "wang", ("Honor", "MagicBook 14"), "buttons", 15,
          steps=_standard_repair() + [Step(52, "clerk", "hand_over", HANDED, details={"check": "pickup_code"})]),
    # --- cancelled ------------------------------------------------------------------------------------
    # by the customer, before the device arrived
    Story("x1", "sh-xuhui", "li", ("Xiaomi", "Redmi Note 13 Pro"), "software", 6, frequency=FaultFrequency.SOMETIMES,
          steps=[Step(5, "customer", "cancel", (), details={
              "reason": "solved_myself", "note": "Restarting in safe mode and uninstalling one app fixed it."})]),
    # by the customer while waiting for parts: the device is still at the desk (counter's "to return" list)
    Story("x2", "bj-chaoyang", "zhang", ("Huawei", "P60"), "camera", 16,
          steps=[Step(24, "clerk", "receive_device", RECEIVED), Step(20, "tech", "order_parts", PARTS),
                 Step(60, "customer", "cancel", (), details={
                     "reason": "no_longer_needed", "note": "I bought a new phone in the meantime."})]),
    # by staff: out of warranty, quote declined, device handed back
    Story("x3", "sz-futian", "liu", ("OPPO", "Reno 11"), "screen", 14, purchased_months_ago=20,
          steps=[Step(22, "clerk", "receive_device", RECEIVED),
                 ConfirmWarranty(3, WarrantyStatus.OUT_OF_WARRANTY),
                 Ask(1, "agent", ContactRequestKind.QUOTE,
                     ("Your phone is out of warranty. A new screen costs 980 CNY. Shall we go ahead?",
                      "您的手机已过保修期，更换屏幕需980元。是否继续维修？"), 72),
                 Answer(20, ("No thank you, that is too expensive.", "不用了，太贵了。")),
                 Step(2, "agent", "cancel",
                      ("Cancelled at your request after the quote. Please collect your device at the counter.",
                       "根据您对报价的答复已取消，请到柜台取回设备。"),
                      "Customer declined the quote by phone as well.",
                      details={"reason": "out_of_warranty", "note": "Quote of 980 CNY declined."}),
                 DeviceReturned(30)]),
    # by staff: liquid damage not covered, found during the repair
    Story("x4", "sh-xuhui", "chen", ("Huawei", "Mate 60 Pro"), "water-damage", 13,
          steps=[Step(20, "clerk", "receive_device", RECEIVED), Step(8, "tech", "start_repair", REPAIR),
                 Step(6, "supervisor", "cancel",
                      ("Corrosion on the main board from liquid damage is not covered by the warranty.",
                       "主板因进液腐蚀，不在保修范围内。"),
                      "Technician's photos of the corroded board attached to the job sheet.",
                      details={"reason": "damage_not_covered", "note": "Board-level corrosion."})]),
    # by staff: information never completed; the customer then submitted again (r-story below)
    Story("x5", "bj-chaoyang", "emily", ("Xiaomi", "Xiaomi Pad 6"), "other", 10,
          steps=[Ask(2, "agent", ContactRequestKind.MISSING_INFORMATION,
                     ("Your description is empty of details: what exactly happens, and since when?",
                      "您的描述缺少细节：具体出现什么问题？从什么时候开始？"), 48),
                 Answer(60, ("Sorry, I will submit a new request with photos.", "抱歉，我会带照片重新提交。")),
                 Step(2, "agent", "cancel", (), "Customer will resubmit.",
                      details={"reason": "incomplete_information", "note": "Customer will resubmit with photos."})]),
    Story("x5b", "bj-chaoyang", "emily", ("Xiaomi", "Xiaomi Pad 6"), "screen", 2, resubmits="x5"),
    # by the system: no answer to a contact request
    Story("x6", "sz-futian", "zhao", ("vivo", "iQOO 12"), "connectivity", 20,
          steps=[Ask(20, "agent", ContactRequestKind.MISSING_INFORMATION,
                     ("Which carrier do you use, and does the problem also happen with Wi-Fi calling off?",
                      "请问您使用哪家运营商？关闭Wi-Fi通话后问题是否依旧？"), 120),
                 Step(121, "system", "cancel", (), details={
                     "reason": "no_response", "note": "No answer within 5 days."})]),
    # by the system: the mailed-in device never arrived
    Story("x7", "sh-xuhui", "wang", ("Xiaomi", "Smart Band 8"), "battery", 24, arrival=ArrivalMethod.MAIL_IN,
          ret=ReturnMethod.SHIP_BACK,
          steps=[Step(24 * 14, "system", "cancel", (), details={
              "reason": "device_not_received", "note": "Nothing received within 14 days."})]),
]


# --- The clock ------------------------------------------------------------------------------------------


@contextmanager
def _clock_at(when):
    """Run the block as if it were ``when``: ``timezone.now()`` and every ``default=timezone.now`` field."""
    fake_now = lambda: when  # noqa: E731
    with ExitStack() as stack:
        stack.enter_context(mock.patch("django.utils.timezone.now", fake_now))
        for model in apps.get_models():
            for f in model._meta.concrete_fields:
                if f.default is _REAL_NOW:
                    # Field.get_default() calls the cached ``_get_default``; shadow it for this block.
                    stack.enter_context(mock.patch.object(f, "_get_default", fake_now))
        yield


class _Timeline:
    """The moments of one story: each step some hours after the previous one, never in the future.

    People act at plausible times: staff during opening hours, customers
    while awake; a step that would fall outside them moves to the next
    morning, unless that would be in the future. The system acts any time.
    """

    HOURS = {ActorKind.STAFF: (time(9, 0), time(21, 0)), ActorKind.CUSTOMER: (time(8, 0), time(23, 0))}

    def __init__(self, start, now, rng):
        self.at = start
        self.now = now
        self.rng = rng

    def advance(self, hours, kind=ActorKind.SYSTEM):
        if kind != ActorKind.SYSTEM:
            hours *= self.rng.uniform(0.8, 1.2)  # people are not punctual; scheduled jobs are
        at = self.at + timedelta(hours=hours, minutes=self.rng.randint(0, 40))
        if kind in self.HOURS:
            shifted = self._within(at, *self.HOURS[kind])
            if shifted < self.now:
                at = shifted
        at = min(at, self.now - timedelta(minutes=self.rng.randint(1, 9)))
        self.at = max(at, self.at)
        return self.at

    def _within(self, at, opens, closes):
        local = timezone.localtime(at)
        if local.time() > closes:
            local += timedelta(days=1)
        if not opens <= local.time() <= closes:
            local = local.replace(hour=opens.hour, minute=0) + timedelta(minutes=self.rng.randint(5, 150))
        return local


# --- Helpers ----------------------------------------------------------------------------------------


@contextmanager
def _quiet_logger(name):
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _kind_of(user):
    """Who acts, for choosing a plausible hour (the door records the kind itself)."""
    if user is None:
        return ActorKind.SYSTEM
    return ActorKind.STAFF if user.is_staff else ActorKind.CUSTOMER


def luhn_complete(body):
    """``body`` (14 digits) plus the Luhn check digit that makes a valid IMEI."""
    return next(body + d for d in "0123456789" if imei.luhn_valid(body + d))


class Command(BaseCommand):
    help = "Create demo service centers, catalogues, users for every role and ~40 tickets in every stage."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="Seed even when DEBUG is off (demo users have a known password)."
        )
        parser.add_argument(
            "--logins", action="store_true", help="Only print the demo logins table; create nothing."
        )
        parser.add_argument("--no-logins", action="store_true", help="Do not print the demo logins table.")

    def handle(self, *args, force=False, logins=False, no_logins=False, **options):
        if logins:
            self.print_logins()
            return
        if not settings.DEBUG and not force:
            raise CommandError("DEBUG is off: demo users have a known password. Use --force if you really mean it.")
        missing_roles = set(ROLES) - set(Group.objects.filter(name__in=ROLES).values_list("name", flat=True))
        if missing_roles:
            raise CommandError(f"Role groups missing ({', '.join(sorted(missing_roles))}): run migrate first.")

        self.rng = random.Random(20250601)
        self.now = _REAL_NOW()
        created = {}
        with transaction.atomic():
            created["service centers"] = self.seed_centers()
            created["device models"] = self.seed_devices()
            created["fault categories"] = self.seed_faults()
            created["users"] = self.seed_users()
        # Each stage change queues a notification job; one log line per job would bury the summary.
        with _quiet_logger("django-q"):
            created["tickets"] = self.seed_tickets()

        summary = ", ".join(f"{count} {what}" for what, count in created.items())
        self.stdout.write(self.style.SUCCESS(f"Demo data: created {summary}."))
        if not no_logins:
            self.print_logins()

    # --- catalogues ------------------------------------------------------------------

    def seed_centers(self):
        count = 0
        for row in CENTERS:
            _center, new = ServiceCenter.objects.get_or_create(code=row["code"], defaults=row)
            count += new
        self.centers = {c.code: c for c in ServiceCenter.objects.filter(code__in=[r["code"] for r in CENTERS])}
        return count

    def seed_devices(self):
        count = 0
        self.os_versions = {}
        for rows, active in ((DEVICES, True), (RETIRED_DEVICES, False)):
            for brand, name, category, months, os_version in rows:
                _model, new = DeviceModel.objects.get_or_create(
                    brand=brand,
                    name=name,
                    defaults={"category": category, "warranty_months": months, "is_active": active},
                )
                count += new
                self.os_versions[(brand, name)] = os_version
        self.devices = {(m.brand, m.name): m for m in DeviceModel.objects.all()}
        return count

    def seed_faults(self):
        count = 0
        for order, (code, name, name_zh, description) in enumerate(FAULTS, start=1):
            _fault, new = FaultCategory.objects.get_or_create(
                code=code,
                defaults={"name": name, "name_zh_hans": name_zh, "description": description, "sort_order": order * 10},
            )
            count += new
        self.faults = {f.code: f for f in FaultCategory.objects.all()}
        return count

    # --- people ------------------------------------------------------------------------

    def seed_users(self):
        count = 0
        password = make_password(DEMO_PASSWORD)  # hashed once: hashing is slow on purpose
        with _clock_at(self.now - timedelta(days=90)):  # date_joined
            if not User.objects.filter(email=ADMIN["email"]).exists():
                User.objects.create(password=password, is_staff=True, is_superuser=True, **ADMIN)
                count += 1
            self.staff = {}
            for key, role, email, full_name, center_codes in STAFF:
                user = User.objects.filter(email=email).first()
                if user is None:
                    user = User.objects.create(
                        email=email, password=password, full_name=full_name, is_staff=True, language="zh-hans"
                    )
                    user.groups.add(Group.objects.get(name=role))
                    user.service_centers.set([self.centers[code] for code in center_codes])
                    count += 1
                self.staff[key] = user
            self.customers = {}
            for key, email, full_name, phone, language, address in CUSTOMERS:
                user = User.objects.filter(email=email).first()
                if user is None:
                    user = User.objects.create(
                        email=email, password=password, full_name=full_name, phone=phone, language=language
                    )
                    count += 1
                self.customers[key] = (user, address)
        return count

    def print_logins(self):
        rows = [("Administrator (superuser)", ADMIN["email"], "all")]
        rows += [(role, email, ", ".join(codes) or "—") for _key, role, email, _name, codes in STAFF]
        rows += [("Customer", email, "—") for _key, email, *_rest in CUSTOMERS]
        widths = [max(len(r[i]) for r in rows + [("role", "email", "service centers")]) for i in range(3)]
        line = "  ".join("-" * w for w in widths)
        self.stdout.write(f"\nDemo logins (password for all: {DEMO_PASSWORD})")
        self.stdout.write("  ".join(h.ljust(w) for h, w in zip(("role", "email", "service centers"), widths)))
        self.stdout.write(line)
        for row in rows:
            self.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
        self.stdout.write("")

    # --- tickets ------------------------------------------------------------------------

    def seed_tickets(self):
        if Ticket.objects.filter(customer__email__in=DEMO_CUSTOMER_EMAILS).exists():
            self.stdout.write("Demo tickets exist already: skipping the ticket set.")
            return 0
        self.tickets = {}
        for story in STORIES:
            with transaction.atomic():
                self.tickets[story.key] = self.tell(story)
        return len(STORIES)

    def actor(self, who, story):
        if who == "system":
            return None
        if who == "customer":
            return self.customers[story.customer][0]
        if who in ("clerk", "tech"):
            return self.staff[f"{who}:{story.center}"]
        return self.staff[who]

    def tell(self, story):
        customer, address = self.customers[story.customer]
        zh = customer.language.startswith("zh")

        def say(pair):
            return (pair[1] if zh else pair[0]) if pair else ""

        opened_by = self.actor(story.opened_by, story)
        # Opened some day ``days_ago``, at an hour people do such things; never in the future.
        day = timezone.localtime(self.now - timedelta(days=story.days_ago))
        start = day.replace(hour=8, minute=0) + timedelta(minutes=self.rng.randint(30, 14 * 60))
        start = min(start, self.now - timedelta(minutes=self.rng.randint(20, 90)))
        timeline = _Timeline(start, self.now, self.rng)
        start = timeline.advance(0, _kind_of(opened_by))
        brand, model_name = story.device
        device = None if brand == "other" else self.devices[(brand, model_name)]
        if device is not None and device.category == DeviceCategory.PHONE:
            number = luhn_complete("86" + "".join(self.rng.choice("0123456789") for _ in range(12)))
        else:
            number = "".join(self.rng.choice("0123456789ABCDEFGHJKLMNPRSTVWXYZ") for _ in range(10))
        purchased = (start - timedelta(days=int(story.purchased_months_ago * 30.4))).date()
        fields = {
            "customer": customer,
            "contact_name": customer.full_name,
            "contact_phone": customer.phone,
            "contact_email": customer.email,
            "service_center": self.centers[story.center],
            "device_model": device,
            "device_other": model_name if device is None else "",
            "imei_or_serial": number,
            "os_version": self.os_versions.get(story.device, ""),
            "fault_category": self.faults[story.fault],
            "symptom_description": say(self.rng.choice(SYMPTOMS[story.fault])),
            "fault_frequency": story.frequency,
            "purchase_date": purchased,
            "arrival_method": story.arrival,
            "return_method": story.ret,
            "return_address": address if story.ret == ReturnMethod.SHIP_BACK else "",
        }
        if story.opened_by != "customer":
            fields["condition_notes"] = say(self.rng.choice(CONDITIONS))
        if story.resubmits:
            fields["resubmitted_from"] = self.tickets[story.resubmits]
        with _clock_at(start):
            ticket = Ticket.open_ticket(by=opened_by, **fields)

        contact_request = None
        for step in story.steps:
            if isinstance(step, Step):
                by = self.actor(step.who, story)
                at = timeline.advance(step.hours, _kind_of(by))
                details = dict(step.details)
                if details.get("check") == "pickup_code":
                    details["pickup_code"] = ticket.pickup_code  # the customer shows it at the counter
                with _clock_at(at):
                    ticket.perform(
                        step.action, by=by, public_note=say(step.note), internal_note=step.internal, **details
                    )
            elif isinstance(step, ConfirmWarranty):
                at = timeline.advance(step.hours, ActorKind.STAFF)
                with _clock_at(at):
                    ticket.confirm_warranty(step.status, by=self.actor("tech", story))
            elif isinstance(step, Ask):
                at = timeline.advance(step.hours, ActorKind.STAFF)
                with _clock_at(at):
                    contact_request = ContactRequest.objects.create(
                        ticket=ticket,
                        kind=step.kind,
                        message=say(step.message),
                        respond_by=at + timedelta(hours=step.respond_within_hours),
                        created_by=self.actor(step.who, story),
                    )
            elif isinstance(step, Answer):
                at = timeline.advance(step.hours, ActorKind.CUSTOMER)
                # ContactRequest.answer() stamps the database's clock; the story needs its own moment.
                ContactRequest.objects.filter(pk=contact_request.pk).update(response=say(step.text), responded_at=at)
            elif isinstance(step, Rate):
                at = timeline.advance(step.hours, ActorKind.CUSTOMER)
                with _clock_at(at):
                    rating = Rating(ticket=ticket, stars=step.stars, comment=say(step.comment), publish=step.stars >= 4)
                    rating.full_clean()
                    rating.save()
            elif isinstance(step, DeviceReturned):
                at = timeline.advance(step.hours, ActorKind.STAFF)
                if ticket.mark_device_returned(by=self.actor("clerk", story), check=HandoverCheck.ID_DOCUMENT):
                    # mark_device_returned() stamps the database's clock; the story needs its own moment.
                    Ticket.objects.filter(pk=ticket.pk).update(device_returned_at=at, updated_at=at)
            else:  # pragma: no cover - a typo in STORIES
                raise TypeError(step)
        return ticket

