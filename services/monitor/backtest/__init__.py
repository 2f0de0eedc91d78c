"""``python -m monitor backtest``: the live strategies over a file of bars, and a report.

data.py reads the file (the replay format, or Binance's kline export); signals.py runs the
monitor's own SymbolRunner over it; trading.py turns signals into trades under one stated
rule; metrics.py scores them; svg.py and report.py draw the HTML report; cli.py is the command.
"""
