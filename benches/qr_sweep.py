"""The scenes of benches/qr_sweep.rs, and zxing-cpp's reading of them.

DIR/code.png is the project's own QR code (a sessionCallbackURL as the
emulator draws it: EC level L, 4 px modules, the quiet zone), DIR/code.txt its
text. Each scene is that code as a card held in front of the door's camera: its
symbol WIDTH px wide (the quiet zone around it), printed dark gray on light
gray, flat, turned in the picture plane, or turned away about its vertical
axis (foreshortened, in perspective), pasted at one of six places into a real
photo cut to 640x480 gray, the whole frame defocused (a Gaussian of BLUR px)
and given a sensor's noise. The random parts are seeded: every run makes the
same scenes from the same code.

Each placement and blur also has a scene without the card (width 0): the
frames a QR scan mostly sees, where what matters is the time and that nothing
is read.

Writes DIR/scenes/*.png and DIR/scenes.json: one record a scene (width, blur,
tilt, placement, file) with whether zxing-cpp (QR only, its defaults: try
harder, rotations, downscales) read the code's text (in an empty scene:
anything at all), and its time.
"""

import json
import os
import sys
import time

import numpy as np
import skimage.data
import zxingcpp
from PIL import Image, ImageFilter

W, H = 640, 480
FIXTURES = "tests/fixtures/faces"
WIDTHS = [120, 140, 160, 200, 240, 280]
BLURS = [0.0, 0.5, 1.0, 1.5]
TILTS = ["flat", "turned 12", "away 40"]
DARK, LIGHT = 35, 215
NOISE = 3.0


def backgrounds():
    """Six placements: a photo cut to 640x480 gray, and where the card's
    centre goes (fractions of the frame)."""
    def cut(img):
        img = img.convert("L")
        f = max(W / img.width, H / img.height)
        img = img.resize((round(img.width * f), round(img.height * f)), Image.BOX)
        x, y = (img.width - W) // 2, (img.height - H) // 2
        return img.crop((x, y, x + W, y + H))

    astronaut = cut(Image.open(os.path.join(FIXTURES, "astronaut.jpg")))
    group = cut(Image.open(os.path.join(FIXTURES, "solvay-group.jpg")))
    street = cut(Image.open(os.path.join(FIXTURES, "no-face.jpg")))
    coffee = cut(Image.fromarray(skimage.data.coffee()))
    return [
        ("astronaut, centre", astronaut, (0.5, 0.55)),
        ("astronaut, low right", astronaut, (0.72, 0.7)),
        ("group, left", group, (0.3, 0.5)),
        ("street, centre", street, (0.5, 0.5)),
        ("street, high left", street, (0.3, 0.3)),
        ("coffee, right", coffee, (0.68, 0.45)),
    ]


def card(code, width):
    """The code scaled so that its symbol is `width` px, in the card's grays,
    with a mask of where the card is."""
    modules = code.width // 4 - 8  # the emulator's 4 px modules, 4 of quiet zone a side
    total = round(width * (modules + 8) / modules)
    c = code.resize((total, total), Image.BOX)
    a = np.asarray(c, dtype=np.float32) / 255.0
    c = Image.fromarray((DARK + a * (LIGHT - DARK)).astype(np.uint8))
    return c, Image.new("L", c.size, 255)


def perspective(size, corners):
    """PIL's PERSPECTIVE coefficients mapping the output quad `corners` back to
    the source rectangle of `size`."""
    w, h = size
    src = [(0, 0), (w, 0), (w, h), (0, h)]
    a, b = [], []
    for (x, y), (u, v) in zip(corners, src):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b += [u, v]
    return np.linalg.solve(np.array(a, float), np.array(b, float)).tolist()


def tilted(img, mask, tilt):
    if tilt == "flat":
        return img, mask
    if tilt.startswith("turned"):
        deg = float(tilt.split()[1])
        return (img.rotate(deg, Image.BILINEAR, expand=True, fillcolor=0),
                mask.rotate(deg, Image.BILINEAR, expand=True, fillcolor=0))
    deg = float(tilt.split()[1])
    w, h = img.size
    # Turned about its vertical axis, its right edge away: narrower, and that
    # edge shorter (the camera 3 card-widths away).
    c = np.cos(np.radians(deg))
    far = 1 - np.sin(np.radians(deg)) / 3
    nw = round(w * c)
    dy = h * (1 - far) / 2
    corners = [(0, 0), (nw, dy), (nw, h - dy), (0, h)]
    coeffs = perspective((w, h), corners)
    return (img.transform((nw, h), Image.PERSPECTIVE, coeffs, Image.BILINEAR),
            mask.transform((nw, h), Image.PERSPECTIVE, coeffs, Image.BILINEAR))


def main(out):
    code = Image.open(os.path.join(out, "code.png")).convert("L")
    text = open(os.path.join(out, "code.txt")).read()
    os.makedirs(os.path.join(out, "scenes"), exist_ok=True)
    rng = np.random.default_rng(30)
    scenes = []
    def add(frame, pname, width, tilt, blur):
        f = frame.filter(ImageFilter.GaussianBlur(blur)) if blur else frame
        a = np.asarray(f, dtype=np.float32) + rng.normal(0, NOISE, (H, W))
        f = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
        name = f"{len(scenes):03d}.png"
        f.save(os.path.join(out, "scenes", name))
        t = time.perf_counter()
        found = zxingcpp.read_barcodes(f, formats=zxingcpp.QRCode)
        ms = (time.perf_counter() - t) * 1000
        read = bool(found) if width == 0 else any(r.text == text for r in found)
        scenes.append({
            "file": f"scenes/{name}", "place": pname, "width": width,
            "tilt": tilt, "blur": blur, "zxing": read, "zxing_ms": ms,
        })

    for pname, bg, (fx, fy) in backgrounds():
        for width in WIDTHS:
            for tilt in TILTS:
                c, m = tilted(*card(code, width), tilt)
                frame = bg.copy()
                x = round(fx * W - c.width / 2)
                y = round(fy * H - c.height / 2)
                frame.paste(c, (x, y), m)
                for blur in BLURS:
                    add(frame, pname, width, tilt, blur)
        for blur in BLURS:
            add(bg, pname, 0, "no code", blur)
    json.dump(scenes, open(os.path.join(out, "scenes.json"), "w"), indent=0)


if __name__ == "__main__":
    main(sys.argv[1])
