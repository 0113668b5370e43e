"""Fit the Haar-box -> landmark-box mapping used by tracker/detector.py (run: python -m benchmarks.fit_detector_box).

Runs OpenCV's frontal Haar cascade on every 4th 300W training crop and prints the median offset of the
landmark-box centre and the landmark-box side, both in units of the Haar box width.
"""
import cv2
import sys

import numpy as np
from train.readers import read_300w
from sht_model.geometry import landmark_box
recs=read_300w(sys.argv[1] if len(sys.argv) > 1 else '../shared/data/300w_train')[::4]
c=cv2.CascadeClassifier(cv2.data.haarcascades+'haarcascade_frontalface_default.xml')
rows=[]
for r in recs:
    g=cv2.cvtColor(cv2.imread(str(r.image)),cv2.COLOR_BGR2GRAY)
    d=c.detectMultiScale(g,1.1,4,minSize=(40,40))
    if len(d)==0: continue
    lb=landmark_box(r.landmarks)
    lc=(lb[:2]+lb[2:])/2; ls=lb[2]-lb[0]
    best=None
    for x,y,w,h in d:
        dc=np.array([x+w/2,y+h/2])
        if np.linalg.norm(dc-lc)<0.3*ls: best=(x,y,w,h)
    if best is None: continue
    x,y,w,h=best
    rows.append([ (lc[0]-(x+w/2))/w, (lc[1]-(y+h/2))/w, ls/w])
rows=np.array(rows)
print(f'matched {len(rows)} of {len(recs)} faces')
print('median dx, dy, side (x Haar width):', np.median(rows, 0), 'std', rows.std(0))
